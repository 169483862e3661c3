"""A provider sending bytes that are not UTF-8. Invalid UTF-8 from an OpenAI or
Anthropic upstream is a provider error: a 502 before the answer starts, an error event
inside the stream after; it was a 500 or a cut connection."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.conftest import Gateway, headers
from gateway.fakes import FAKES, Upstream, garbling
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services.gateway.settings import ProviderConfig

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


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_provider_sending_invalid_utf8_is_a_provider_error(
        gateway: Gateway, serve: Any, settings: Settings, kind: str) -> None:
    # the fake answers "echo: hi BROKEN" ("BROKEN" garbled), a word an event when streaming
    _, late_url = await upstream(serve, kind, garbled="BROKEN")
    _, early_url = await upstream(serve, kind, garbled="echo")
    app = await gateway(remote("late", kind, late_url),
                        remote("early", kind, early_url), retries=1)
    broken = [{"role": "user", "content": "hi BROKEN"}]
    async with httpx.AsyncClient(base_url=app.url, timeout=60,
                                 headers=headers(settings)) as http:
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
