"""The gateway over real HTTP: the local SmolLM2 model, a real llama.cpp server behind
the OpenAI-compatible provider, the openai SDK and LangChain unchanged, bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from langchain_openai import ChatOpenAI

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services.gateway.settings import ProviderConfig
from services.gateway.conftest import Gateway, headers

ASK = {"prompt": "What is the capital of France?", "max_tokens": 12, "temperature": 0}


async def test_query_answers_with_the_local_model_then_from_cache(
        gateway: Gateway, settings: Settings) -> None:
    app = await gateway()
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        first = await http.post("/query", json=ASK)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["response"].strip()
        assert (body["provider"], body["model"], body["cached"]) == ("local", "smollm2", False)
        assert body["tokens"]["prompt"] > 0 and 0 < body["tokens"]["completion"] <= 12
        assert body["cost"] == 0 and body["correlation_id"] == first.headers["x-correlation-id"]
        assert float(first.headers["x-gateway-overhead-ms"]) >= 0
        second = await http.post("/query", json=ASK)
        assert second.json()["cached"] is True
        assert second.json()["response"] == body["response"]
        assert second.headers["x-gateway-cache"] == "hit"
        bypass = await http.post("/query", json=ASK, headers={"Cache-Control": "no-cache"})
        assert bypass.json()["cached"] is False
        metrics = (await http.get("/metrics")).text
        assert 'llmdocs_gateway_cache_total{result="hit"} 1.0' in metrics


async def test_openai_sdk_and_langchain_work_unchanged(gateway: Gateway,
                                                       settings: Settings) -> None:
    app = await gateway()
    token = issue_token(settings, "user:ann", ["llm:read", "llm:write"])
    client = openai.AsyncOpenAI(base_url=app.url + "/v1", api_key=token, max_retries=0)
    models = await client.models.list()
    assert "smollm2" in [m.id for m in models.data]
    reply = await client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8, temperature=0)
    assert reply.choices[0].message.content and reply.usage and reply.usage.total_tokens > 0
    pieces = []
    stream = await client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=8, stream=True, stream_options={"include_usage": True},
        extra_headers={"Cache-Control": "no-cache"})
    usage = None
    async for chunk in stream:
        pieces += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    assert "".join(pieces).strip() and usage is not None and usage.completion_tokens > 0
    schema: dict[str, object] = {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}
    structured = await client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Capital of France as JSON."}],
        max_tokens=24, temperature=0,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "city", "schema": schema}})
    assert isinstance(json.loads(structured.choices[0].message.content or "")["city"], str)
    await client.close()

    chat = ChatOpenAI(base_url=app.url + "/v1", api_key=token, model="smollm2",
                      max_tokens=8, temperature=0, max_retries=0)
    message = await chat.ainvoke("Name a colour.")
    assert isinstance(message.content, str) and message.content.strip()


async def test_openai_compatible_provider_against_a_real_llama_cpp_server(
        gateway: Gateway, settings: Settings, llama_server: str) -> None:
    remote = ProviderConfig(name="llamacpp", kind="openai", base_url=llama_server,
                            models={"smollm2": "smollm2"})
    app = await gateway(remote)
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        answer = await http.post("/query", json={**ASK, "provider": "llamacpp"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["provider"] == "llamacpp" and answer.json()["response"].strip()
        assert answer.json()["tokens"]["completion"] > 0
        async with http.stream("POST", "/v1/chat/completions", json={
                "model": "llamacpp/smollm2", "max_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": "Tell a joke."}]}) as streamed:
            lines = [line async for line in streamed.aiter_lines() if line.startswith("data:")]
        assert lines[-1] == "data: [DONE]"
        text = "".join(json.loads(line[5:])["choices"][0]["delta"].get("content", "")
                       for line in lines[:-1] if json.loads(line[5:])["choices"])
        assert text.strip()
        providers = (await http.get("/providers", params={"probe": "true"})).json()
        assert providers["providers"][0]["healthy"] is True


async def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    return body


async def test_bad_input_is_a_clear_4xx_and_a_dead_provider_a_502(
        gateway: Gateway, settings: Settings) -> None:
    dead = ProviderConfig(name="dead", kind="openai", base_url="http://127.0.0.1:9/v1",
                          models={"gpt-4o-mini": "gpt-4o-mini"}, timeout_seconds=2)
    app = await gateway(ProviderConfig(name="local", kind="local", models={"smollm2": ""}),
                        dead, retries=1)
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        assert (await http.post("/query", json={"prompt": "x"},
                                headers={"Authorization": ""})).status_code == 401
        malformed = await http.post("/v1/chat/completions", content=b"{not json",
                                    headers={"content-type": "application/json"})
        await _problem(malformed, 422)
        no_messages = await http.post("/v1/chat/completions", json={"model": "smollm2",
                                                                    "messages": []})
        assert "messages" in (await _problem(no_messages, 422))["detail"]
        malformed = await http.post("/query", content=b'{"prompt": ',
                                    headers={"content-type": "application/json"})
        await _problem(malformed, 422)
        empty = await http.post("/query", json={"prompt": "", "temperature": 3})
        assert {e["field"] for e in (await _problem(empty, 422))["errors"]} == {
            "body.prompt", "body.temperature"}
        unknown = await http.post("/query", json={"prompt": "hi", "model": "gpt-9"})
        assert "gpt-9" in (await _problem(unknown, 404))["detail"]
        provider = await http.post("/query", json={"prompt": "hi", "provider": "nope"})
        assert (await _problem(provider, 422))["errors"][0]["field"] == "provider"
        too_many = await http.post("/query", json={"prompt": "hi", "max_tokens": 10**6})
        assert (await _problem(too_many, 422))["errors"][0]["field"] == "max_tokens"
        schema = await http.post("/query", json={"prompt": "hi",
                                                 "json_schema": {"type": "nonsense"}})
        assert (await _problem(schema, 422))["errors"][0]["field"] == "response_format"
        down = await http.post("/query", json={"prompt": "hi", "model": "gpt-4o-mini"})
        assert "'dead'" in (await _problem(down, 502))["detail"]
        down_stream = await http.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "hi"}]})
        await _problem(down_stream, 502)
