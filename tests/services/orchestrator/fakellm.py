"""A stand-in for a paid OpenAI-compatible model API: a local HTTP server speaking the
chat-completions wire format, answering after a fixed latency. Prose requests get a
sentence, JSON-schema requests a small object every llmdocs schema accepts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ecosystem import start_services
from llmdocs.core.config import Settings

PROSE = "The user service manages accounts and sessions of the platform."
JSON_ANSWER = {"score": 9, "approved": True, "gaps": [], "intent": "generate_document",
               "confidence": 0.9}


def fake_llm(latency_seconds: float, *, echo: bool = False, prose: str = PROSE,
             writes: Callable[[str], str] | None = None) -> Starlette:
    """Prose answers are `prose`; with `echo`, they repeat the prompt, as a weak model
    sometimes does; with `writes`, they are what it makes of the prompt.
    `app.state.peak` is the most requests it answered at once."""
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state = request.app.state
        state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        try:
            if latency_seconds:
                await asyncio.sleep(latency_seconds)
        finally:
            state.in_flight -= 1
        prompt = body["messages"][-1]["content"]
        said = prompt if echo else writes(prompt) if writes else prose
        text = json.dumps(JSON_ANSWER) if body.get("response_format") else said
        return JSONResponse({
            "id": "cmpl-fake", "object": "chat.completion", "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    app.state.in_flight = app.state.peak = 0
    return app


def provider_env(url: str) -> dict[str, str]:
    """Gateway settings that route every call to the fake."""
    return {"LLMDOCS_GATEWAY_PROVIDERS": json.dumps([{
        "name": "fake", "kind": "openai", "base_url": url + "/v1",
        "models": {"fake": "fake"}, "api_key": "not-a-real-key",
        "trusted": True}]),
        "LLMDOCS_GATEWAY_DEFAULT_MODEL": "fake"}


async def ecosystem_with(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                         **fake: Any) -> Settings:
    """The services the main job needs over HTTP, their model this fake on loopback."""
    model = await serve(fake_llm(0.0, **fake))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    return await start_services(settings, serve)
