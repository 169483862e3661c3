"""Bad input to the gateway's writes on PostgreSQL, each once a 500: a NUL in the user a
request is recorded for, a message field or metadata no JSON writer takes (an integer
past 64 bits), a lone surrogate to embed, a budget's or limit's subject a column cannot
hold, a limit past int4. Each is a 422 naming the field, and a budget set stays as it
was. /query's prompt and system text refuse a NUL as a chat's messages do (they passed
it to the provider). A provider's stream line too long to read ends the stream with an
in-band error instead of a connection cut mid-answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import SecretStr

from badinput import HUGE_INT, JSON_VALUES, NUL, SURROGATE, assert_refused, send
from llmdocs.core.config import Settings
from llmdocs.services.gateway.settings import ProviderConfig
from services.gateway.conftest import Fake, Gateway, headers

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}]}


def remote(url: str) -> ProviderConfig:
    return ProviderConfig(name="cloud", kind="openai", base_url=url,
                          api_key=SecretStr("sk-test"), models={"gpt-4o-mini": "gpt-4o-mini"},
                          embedding_models={"emb": "text-embedding-3-small"})


async def test_requests_a_record_cannot_hold_are_a_422(
        gateway: Gateway, fake: Fake, settings: Settings, pg_url: str) -> None:
    _, url = await fake("openai")
    app = await gateway(remote(url), kernel=settings.model_copy(
        update={"database_url": pg_url}))
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings, "user:root", "llm:*")) as http:
        for stream in (False, True):
            chat = {**CHAT, "stream": stream}
            assert_refused(await send(http, "POST", "/v1/chat/completions",
                                      {**chat, "user": NUL}), "user")
            named = {**chat, "messages": [{"role": "user", "content": "hi", "name": HUGE_INT}]}
            assert_refused(await send(http, "POST", "/v1/chat/completions", named),
                           "messages.0")
        for kind, value in JSON_VALUES.items():
            # pydantic's JSON parser refuses a lone surrogate and deep nesting itself
            unreadable = kind in ("surrogate", "deep")
            assert_refused(await send(http, "POST", "/v1/chat/completions",
                                      {**CHAT, "metadata": value}),
                           "body" if unreadable else "metadata")
            assert_refused(await send(http, "POST", "/query",
                                      {"prompt": "hi", "json_schema": value}),
                           "body" if unreadable else "json_schema")
        assert_refused(await send(http, "POST", "/query", {"prompt": "hi", "user_id": NUL}),
                       "user_id")
        for given in (SURROGATE, [SURROGATE]):
            assert_refused(await send(http, "POST", "/v1/embeddings",
                                      {"model": "emb", "input": given}), "input")

        ok = await http.put("/budgets/user/user:bob", json={"limit_usd": 1.0})
        assert ok.status_code == 200, ok.text
        before = (await http.get("/budgets")).json()
        for method, path, body in [("PUT", "/budgets/user/a%00b", {"limit_usd": 1.0}),
                                   ("DELETE", "/budgets/user/a%00b", None),
                                   ("PUT", "/limits/user/a%00b", {"rpm": 1}),
                                   ("DELETE", "/limits/user/a%00b", None),
                                   ("PUT", "/budgets/user/" + "x" * 300, {"limit_usd": 1.0}),
                                   ("PUT", "/limits/user/" + "x" * 300, {"rpm": 1})]:
            assert_refused(await send(http, method, path, body), "subject")
        for field in ("rpm", "tpm"):
            assert_refused(await send(http, "PUT", "/limits/user/user:bob",
                                      {field: HUGE_INT}), field)
        assert (await http.get("/budgets")).json() == before
        assert_refused(await http.get("/usage", params={"user_id": NUL}), "user_id")


async def test_a_query_with_a_nul_is_a_422_naming_the_field(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    upstream, url = await fake("openai")
    app = await gateway(remote(url))
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        for field in ("prompt", "system"):
            query = {"prompt": "hi", "model": "gpt-4o-mini", field: NUL}
            assert_refused(await send(http, "POST", "/query", query), field)
        chat = {**CHAT, "messages": [{"role": "user", "content": NUL}]}
        assert_refused(await send(http, "POST", "/v1/chat/completions", chat), "messages")
        assert upstream.bodies == []
        ok = await http.post("/query", json={"prompt": "hi", "model": "gpt-4o-mini"})
        assert ok.status_code == 200, ok.text


async def test_a_stream_line_too_long_to_read_ends_with_an_error_event(
        gateway: Gateway, fake: Fake, settings: Settings) -> None:
    _, url = await fake("openai")  # it echoes the message: one line of over 1 MB
    app = await gateway(remote(url))
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
        big = {**CHAT, "stream": True, "messages": [{"role": "user", "content": "x" * 2**19}]}
        async with http.stream("POST", "/v1/chat/completions", json=big) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][5:])["error"]
    assert error["type"] == "provider_error" and "too long" in error["message"]
