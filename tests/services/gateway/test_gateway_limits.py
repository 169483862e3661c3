"""Limits on what a call may ask of a model, and a provider sending bytes that are not
UTF-8. A max_tokens past the gateway's ceiling or the model's own limit, or not a JSON
integer, more than 4 stop sequences or a long one, a system text longer than a prompt
may be, and messages longer than the local model's context are a 422 naming the field
before any provider works on them (a stop list or a too-long prompt reached the model,
the last one as a 502 retried). Invalid UTF-8 from an OpenAI or Anthropic upstream is a
provider error: a 502 before the answer starts, an error event inside the stream after;
it was a 500 or a cut connection. An upstream's 400, 413 or 422 is the caller's 4xx, and
does not count against the provider's circuit."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from badinput import HUGE_INT, assert_refused, send
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services.gateway.settings import ProviderConfig
from services.gateway.conftest import Gateway, headers
from services.gateway.fakes import FAKES, Upstream, garbling

HI = [{"role": "user", "content": "hi"}]
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 5}


def remote(name: str, kind: str, url: str, **options: Any) -> ProviderConfig:
    """A paid provider at `url` serving gpt-4o-mini, with the key the Anthropic fake takes."""
    return ProviderConfig(name=name, kind=kind, base_url=url, api_key=SecretStr("sk-ant-test"),
                          models={"gpt-4o-mini": "gpt-4o-mini"}, **options)


async def upstream(serve: Any, kind: str, garbled: str | None = None) -> tuple[Upstream, str]:
    """A fake of `kind`, sending `garbled` as bytes that are not UTF-8 if given."""
    fake = Upstream()
    app = FAKES[kind](fake)
    running = await serve(app if garbled is None else garbling(app, garbled))
    return fake, running.url + ("/v1" if kind == "openai" else "")


async def cloud(gateway: Gateway, serve: Any) -> tuple[Upstream, Any]:
    """A gateway whose one provider is a fake of OpenAI's API, and that fake."""
    fake, url = await upstream(serve, "openai")
    return fake, await gateway(remote("cloud", "openai", url))


def calling(app: Any, settings: Settings) -> httpx.AsyncClient:
    """A client of the gateway `app` with a token of every scope."""
    return httpx.AsyncClient(base_url=app.url, timeout=60, headers=headers(settings))


async def test_max_tokens_past_the_ceiling_or_not_an_integer_is_a_422(
        gateway: Gateway, serve: Any, settings: Settings) -> None:
    fake, app = await cloud(gateway, serve)
    async with calling(app, settings) as http:
        for stream in (False, True):
            for field in ("max_tokens", "max_completion_tokens"):
                for value in (10**9, HUGE_INT, "5", True, 5.0, 1.5, 0):
                    answer = await send(http, "POST", "/v1/chat/completions",
                                        {**CHAT, "stream": stream, field: value})
                    assert_refused(answer, field)
        for value in (10**9, HUGE_INT, "5", True):
            assert_refused(await send(http, "POST", "/query",
                                      {"prompt": "hi", "model": "gpt-4o-mini",
                                       "max_tokens": value}), "max_tokens")
        ceiling = await send(http, "POST", "/query", {"prompt": "hi", "max_tokens": 4097,
                                                      "model": "gpt-4o-mini"})
        assert_refused(ceiling, "max_tokens")
        assert "4096" in ceiling.json()["detail"]
        assert fake.bodies == []
        ok = await http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 4096})
        assert ok.status_code == 200, ok.text
        assert fake.bodies[0]["max_tokens"] == 4096


async def test_max_tokens_past_the_models_limit_is_a_422_saying_it(
        gateway: Gateway, serve: Any, settings: Settings) -> None:
    small, small_url = await upstream(serve, "openai")
    big, big_url = await upstream(serve, "anthropic")
    app = await gateway(
        remote("small", "openai", small_url, max_output_tokens={"gpt-4o-mini": 100}),
        remote("big", "anthropic", big_url, max_output_tokens={"gpt-4o-mini": 1000}),
        ProviderConfig(name="local", kind="local", models={"smollm2": ""}))
    async with calling(app, settings) as http:
        # the local model's context (2048 tokens) holds the prompt and the answer
        for body in ({"prompt": "hi", "max_tokens": 3000},
                     {"prompt": "hi", "max_tokens": 1001, "model": "gpt-4o-mini"}):
            refused = await http.post("/query", json=body)
            assert_refused(refused, "max_tokens")
        assert "2048 for model 'smollm2'" in (await http.post("/query", json={
            "prompt": "hi", "max_tokens": 3000})).json()["detail"]
        refused = await http.post("/v1/chat/completions", json={
            **CHAT, "max_tokens": None, "max_completion_tokens": 1001, "stream": True})
        assert_refused(refused, "max_completion_tokens")
        assert "at most 1000 for model 'gpt-4o-mini'" in refused.json()["detail"]
        assert small.bodies == big.bodies == []
        # a provider whose model writes less is passed over for one that writes enough
        served = await http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 500,
                                                               "provider": "auto"})
        assert served.status_code == 200, served.text
        assert served.json()["gateway"]["provider"] == "big"
        assert small.bodies == [] and big.bodies[0]["max_tokens"] == 500


async def test_stop_sequences_and_a_long_system_text_are_bounded(
        gateway: Gateway, serve: Any, settings: Settings) -> None:
    fake, app = await cloud(gateway, serve)
    async with calling(app, settings) as http:
        for stop in (["a"] * 5, ["a"] * 100_000, "x" * 1001, ["x" * 1001]):
            assert_refused(await send(http, "POST", "/v1/chat/completions",
                                      {**CHAT, "stop": stop}), "stop")
        assert_refused(await send(http, "POST", "/query", {
            "prompt": "hi", "model": "gpt-4o-mini", "system": "x" * 200_001}), "system")
        assert fake.bodies == []
        ok = await http.post("/v1/chat/completions", json={**CHAT, "stop": ["a"] * 4})
        assert ok.status_code == 200, ok.text
        assert fake.bodies[0]["stop"] == ["a"] * 4


async def test_messages_longer_than_the_local_context_are_a_422(
        gateway: Gateway, settings: Settings) -> None:
    app = await gateway()
    long = "hello " * 3000  # over 2048 tokens
    async with calling(app, settings) as http:
        for stream in (False, True):
            answer = await http.post("/v1/chat/completions", json={
                "model": "smollm2", "messages": [{"role": "user", "content": long}],
                "max_tokens": 4, "stream": stream})
            assert_refused(answer, "messages")
            assert "context" in answer.json()["detail"]
        refused = await http.post("/query", json={"prompt": long, "max_tokens": 4})
        assert_refused(refused, "prompt")  # the field /query's caller sent
        assert [e["field"] for e in refused.json()["errors"]] == ["prompt"]
        calls = (await http.get("/providers")).json()["providers"][0]["calls"]
        assert calls == 3  # refused once each, not retried


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_provider_sending_invalid_utf8_is_a_provider_error(
        gateway: Gateway, serve: Any, settings: Settings, kind: str) -> None:
    # the fake answers "echo: hi BROKEN" ("BROKEN" garbled), a word an event when streaming
    _, late_url = await upstream(serve, kind, garbled="BROKEN")
    _, early_url = await upstream(serve, kind, garbled="echo")
    app = await gateway(remote("late", kind, late_url),
                        remote("early", kind, early_url), retries=1)
    broken = [{"role": "user", "content": "hi BROKEN"}]
    async with calling(app, settings) as http:
        for provider in ("late", "early"):
            for stream in (False, True) if provider == "early" else (False,):
                answer = await http.post("/v1/chat/completions", json={
                    **CHAT, "messages": broken, "provider": provider, "stream": stream})
                assert answer.status_code == 502, answer.text
                assert answer.headers["content-type"].startswith(PROBLEM_JSON)
                problem = answer.json()
                assert problem["type"].endswith("provider-error")
                assert f"Provider {provider!r} failed" in problem["detail"]
        async with http.stream("POST", "/v1/chat/completions", json={
                **CHAT, "messages": broken, "provider": "late", "stream": True}) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][5:])["error"]
    assert error == {"type": "provider_error",
                     "message": "Provider 'late' failed: streamed bytes that are not UTF-8"}
    text = "".join(json.loads(line[5:])["choices"][0]["delta"].get("content", "")
                   for line in lines[:-2])
    assert text == "echo: hi "


@pytest.mark.parametrize(("upstream_status", "status"), [
    (400, 400), (413, 413), (422, 422),  # the request: the caller's to mend
    (401, 502), (404, 502),  # the gateway's key or model name: the operator's
])
async def test_an_upstream_refusing_the_request_is_the_callers_4xx(
        gateway: Gateway, serve: Any, settings: Settings, upstream_status: int,
        status: int) -> None:
    """As LiteLLM and the OpenAI SDK take it: a paid API's 400 (a context too long, a
    value it does not take) is the caller's request at fault, answered as that 4xx with
    the upstream's words, not retried, and not held against the provider (callers' bad
    requests opened its circuit for everyone); a refused key or an unknown model stays a
    502 and does count."""
    fake, app = await cloud(gateway, serve)
    fake.fail_status = upstream_status
    async with calling(app, settings) as http:
        for stream in (False, True, False):  # the breaker opens after 3 failures
            answer = await http.post("/v1/chat/completions", json={**CHAT, "stream": stream})
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"].startswith(PROBLEM_JSON)
            assert "upstream broke" in answer.json()["detail"]
        assert len(fake.bodies) == 3  # once each: a refusal is not retried
        fake.fail_status = None
        after = await http.post("/v1/chat/completions", json=CHAT)
        assert after.status_code == (200 if status < 500 else 503), after.text
