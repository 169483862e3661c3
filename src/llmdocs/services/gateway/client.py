"""Typed client of the llm-gateway: what other services and the CLI use to reach it.
Every model call in llmdocs goes through here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmdocs.core.client import ServiceClient, ServiceUnavailable, error_for
from llmdocs.services.gateway.schemas import QueryResponse


class GatewayClient(ServiceClient):
    service = "gateway"

    async def query(self, prompt: str, *, model: str | None = None, provider: str = "auto",
                    max_tokens: int | None = None, temperature: float | None = None,
                    system: str | None = None, json_schema: dict[str, Any] | None = None,
                    user_id: str | None = None, metadata: dict[str, Any] | None = None,
                    **options: Any) -> QueryResponse:
        """Ask a model; `options` are cost_preference, performance_requirement, policy,
        cache_ttl. `metadata` (prompt_id, prompt_version) reaches the usage event."""
        body = {"prompt": prompt, "model": model, "provider": provider,
                "max_tokens": max_tokens, "temperature": temperature, "system": system,
                "json_schema": json_schema, "user_id": user_id, "metadata": metadata,
                **options}
        # orjson and one pydantic-core pass over the answer: every model call comes here,
        # with a prompt of a few KB that httpx's `json=` would encode with the json module
        response = await self.request(
            "POST", "/query", content=orjson.dumps({k: v for k, v in body.items()
                                                    if v is not None}),
            headers={"content-type": "application/json"})
        return QueryResponse.model_validate_json(response.content)

    async def chat(self, messages: list[dict[str, Any]], *, model: str,
                   **params: Any) -> dict[str, Any]:
        """An OpenAI-style chat completion (the whole answer as one JSON object)."""
        result: dict[str, Any] = await self.post_json(
            "/v1/chat/completions", {"model": model, "messages": messages, **params})
        return result

    async def stream(self, messages: list[dict[str, Any]], *, model: str,
                     **params: Any) -> AsyncIterator[str]:
        """The answer's text as it is generated."""
        body = {"model": model, "messages": messages, "stream": True, **params}
        try:
            async with self.http.stream("POST", "/v1/chat/completions", json=body,
                                        headers=self._headers(None)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(self.service, response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[5:])
                    if "error" in event:
                        raise ServiceUnavailable(self.service, 502, event["error"])
                    for choice in event.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        except ServiceUnavailable:
            raise
        except OSError as exc:
            raise ServiceUnavailable(self.service, 503, {"detail": str(exc)}) from exc

    async def providers(self, probe: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self.get_json(
            "/providers", params={"probe": "true" if probe else "false"})
        return result

    async def usage(self, user_id: str | None = None, since: str | None = None
                    ) -> dict[str, Any]:
        params = {k: v for k, v in {"user_id": user_id, "since": since}.items() if v}
        result: dict[str, Any] = await self.get_json("/usage", params=params)
        return result

    async def budgets(self) -> list[dict[str, Any]]:
        """Every budget with the spend of its current window (needs `llm:admin`)."""
        result: list[dict[str, Any]] = await self.get_json("/budgets")
        return result
