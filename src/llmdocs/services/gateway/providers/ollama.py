"""`ollama`: Ollama's native API (`/api/chat` streaming NDJSON, `/api/embed`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from llmdocs.services.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Delta,
    Embeddings,
    HttpProvider,
    ProviderError,
)


@dataclass
class OllamaProvider(HttpProvider):
    kind = "ollama"

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = request.stop
        body: dict[str, Any] = {"model": request.model, "messages": request.messages,
                                "stream": stream, "options": options}
        if request.json_schema is not None:
            body["format"] = request.json_schema
        elif request.json_mode:
            body["format"] = "json"
        return body

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self.post_json("/api/chat", self._body(request, False))
        try:
            return ChatResult(data["message"].get("content") or "",
                              int(data.get("prompt_eval_count", 0)),
                              int(data.get("eval_count", 0)),
                              _finish(data.get("done_reason")))
        except (KeyError, TypeError) as exc:
            raise ProviderError(self.name, "answered without a message") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        async for line in self.lines("/api/chat", self._body(request, True)):
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ProviderError(self.name, "sent an invalid stream line") from exc
            if "error" in data:
                raise ProviderError(self.name, f"failed: {data['error']}")
            text = (data.get("message") or {}).get("content")
            if text:
                yield Delta(text)
            if data.get("done"):
                yield Delta("", _finish(data.get("done_reason")),
                            int(data.get("prompt_eval_count", 0)),
                            int(data.get("eval_count", 0)))
                return

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        data = await self.post_json("/api/embed", {"model": model, "input": inputs})
        try:
            return Embeddings(data["embeddings"], int(data.get("prompt_eval_count", 0)))
        except (KeyError, TypeError) as exc:
            raise ProviderError(self.name, "answered without embeddings") from exc

    async def ping(self) -> None:
        await self.get_json("/api/tags")


def _finish(reason: Any) -> str:
    return "length" if reason == "length" else "stop"
