"""`anthropic`: the Messages API (`/v1/messages`), streaming as server-sent events.
JSON-schema output uses a forced tool call whose input is the answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from llmdocs.services.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Delta,
    HttpProvider,
    ProviderError,
    text_of,
)

VERSION = "2023-06-01"
_TOOL = "respond"


@dataclass
class AnthropicProvider(HttpProvider):
    kind = "anthropic"

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.secret(), "anthropic-version": VERSION}

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        system = "\n".join(text_of(m.get("content")) for m in request.messages
                           if m.get("role") == "system")
        body: dict[str, Any] = {
            "model": request.model, "max_tokens": request.max_tokens, "stream": stream,
            "messages": [{"role": m["role"], "content": text_of(m.get("content"))}
                         for m in request.messages if m.get("role") != "system"],
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = request.stop
        schema = request.json_schema or ({"type": "object"} if request.json_mode else None)
        if schema is not None:
            body["tools"] = [{"name": _TOOL, "description": "Give the answer.",
                              "input_schema": schema}]
            body["tool_choice"] = {"type": "tool", "name": _TOOL}
        return body

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self.post_json("/v1/messages", self._body(request, False))
        try:
            parts = []
            for block in data["content"]:
                if block.get("type") == "text":
                    parts.append(block["text"])
                elif block.get("type") == "tool_use":
                    parts.append(json.dumps(block["input"]))
            usage = data.get("usage") or {}
            return ChatResult("".join(parts), int(usage.get("input_tokens", 0)),
                              int(usage.get("output_tokens", 0)),
                              _finish(data.get("stop_reason")))
        except (KeyError, TypeError) as exc:
            raise ProviderError(self.name, "answered without content") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        prompt, completion, finish = 0, 0, "stop"
        async for event in self.sse("/v1/messages", self._body(request, True)):
            kind = event.get("type")
            if kind == "message_start":
                usage = (event.get("message") or {}).get("usage") or {}
                prompt = int(usage.get("input_tokens", 0))
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                text = delta.get("text") or delta.get("partial_json")
                if text:
                    yield Delta(text)
            elif kind == "message_delta":
                finish = _finish((event.get("delta") or {}).get("stop_reason"))
                completion = int((event.get("usage") or {}).get("output_tokens", 0))
            elif kind == "error":
                detail = (event.get("error") or {}).get("message", "stream error")
                raise ProviderError(self.name, f"failed: {detail}")
            elif kind == "message_stop":
                break
        yield Delta("", finish, prompt, completion)

    async def ping(self) -> None:
        await self.get_json("/v1/models")


def _finish(reason: Any) -> str:
    return "length" if reason == "max_tokens" else "stop"
