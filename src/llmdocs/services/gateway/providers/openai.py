"""`openai`: OpenAI and every server speaking its API (vLLM, LM Studio, the llama.cpp
server, Groq, xAI, OpenRouter). `base_url` includes the version, e.g. `.../v1`."""

from __future__ import annotations

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
    pooled,
)


@dataclass
class OpenAIProvider(HttpProvider):
    kind = "openai"

    def auth_headers(self) -> dict[str, str]:
        key = self.secret()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages,
                                "max_tokens": request.max_tokens}
        for name in ("temperature", "top_p", "stop"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "response", "schema": request.json_schema, "strict": True}}
        elif request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self.post_json("/chat/completions", self._body(request, False))
        try:
            choice, usage = data["choices"][0], data.get("usage") or {}
            return ChatResult(choice["message"].get("content") or "",
                              int(usage.get("prompt_tokens", 0)),
                              int(usage.get("completion_tokens", 0)),
                              choice.get("finish_reason") or "stop")
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(self.name, "answered without a choice") from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        finish, prompt, completion = "stop", 0, 0
        async for event in self.sse("/chat/completions", self._body(request, True)):
            usage = event.get("usage")
            if usage:
                prompt = int(usage.get("prompt_tokens", 0))
                completion = int(usage.get("completion_tokens", 0))
            for choice in event.get("choices") or ():
                finish = choice.get("finish_reason") or finish
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield Delta(text)
        yield Delta("", finish, prompt, completion)

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        data = await self.post_json("/embeddings", {"model": model, "input": inputs})
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            tokens = int((data.get("usage") or {}).get("prompt_tokens", 0))
            return Embeddings([pooled(row["embedding"]) for row in rows], tokens)
        except (KeyError, TypeError) as exc:
            raise ProviderError(self.name, "answered without embeddings") from exc

    async def ping(self) -> None:
        await self.get_json("/models")
