"""Typed client of the log-collector: what other services and the CLI use to reach it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import TypeAdapter

from llmdocs.core.client import ServiceClient, error_for
from llmdocs.services.logcollector.schemas import (
    Accepted,
    AuditPage,
    Correlation,
    LogIn,
    LogOut,
    Page,
    WindowStats,
)

_stats = TypeAdapter(list[WindowStats])


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in filters.items() if value not in (None, [], "")}


class LogCollectorClient(ServiceClient):
    service = "logcollector"

    async def send_logs(self, records: Sequence[LogIn]) -> Accepted:
        """Idempotent when records carry ids, so retrying is safe."""
        body = {"records": [r.model_dump(mode="json") for r in records]}
        response = await self.request("POST", "/logs/batch", json=body,
                                      idempotent=all(r.id for r in records))
        return Accepted.model_validate(response.json())

    async def logs(self, **filters: Any) -> Page:
        return Page.model_validate(await self.get_json("/logs", params=_params(filters)))

    async def events(self, **filters: Any) -> Page:
        return Page.model_validate(await self.get_json("/events", params=_params(filters)))

    async def stats(self, windows: Sequence[str] = ("5m", "1h", "24h")) -> list[WindowStats]:
        return _stats.validate_python(await self.get_json("/stats",
                                                          params={"window": list(windows)}))

    async def correlation(self, correlation_id: str) -> Correlation:
        return Correlation.model_validate(await self.get_json(f"/correlations/{correlation_id}"))

    async def audit(self, **filters: Any) -> AuditPage:
        """A page of audit records, newest first (needs `logs:audit`)."""
        return AuditPage.model_validate(await self.get_json("/audit",
                                                            params=_params(filters)))

    async def audit_export(self, **filters: Any) -> AsyncIterator[str]:
        """Every matching audit record as a line of JSON, oldest first."""
        params = _params(filters) | {"format": "jsonl"}
        async with self.http.stream("GET", "/audit", params=params,
                                    headers=self._headers(None), timeout=None) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_for(self.service, response)
            async for line in response.aiter_lines():
                if line:
                    yield line

    async def tail(self, **filters: Any) -> AsyncIterator[LogOut]:
        """Log records as they arrive (server-sent events), until the caller stops. The
        server ends a stream that has been quiet or open for long; this connects again
        after the `retry` it gave, with the last id it got, as an EventSource does."""
        last: str | None = None
        retry = 0.5
        while True:
            headers = self._headers(None if last is None else {"Last-Event-ID": last})
            async with self.http.stream("GET", "/logs/stream", params=_params(filters),
                                        headers=headers, timeout=None) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(self.service, response)
                async for line in response.aiter_lines():
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "data":
                        yield LogOut.model_validate(json.loads(value))
                    elif field == "id":
                        last = value
                    elif field == "retry" and value.isdigit():
                        retry = int(value) / 1000
            await asyncio.sleep(retry)
