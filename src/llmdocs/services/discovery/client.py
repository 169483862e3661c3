"""Typed client of the discovery-agent: what other services and the CLI use to reach it,
and the self-registration every service runs at start when `LLMDOCS_DISCOVERY_URL` is
set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from pydantic import TypeAdapter

from llmdocs.core.client import ServiceClient, ServiceError
from llmdocs.core.config import Settings
from llmdocs.core.service import ServiceSpec
from llmdocs.services.discovery.schemas import (
    DiscoveryResult,
    HealthTransition,
    WatchedHealth,
)

log = structlog.get_logger(__name__)
_results = TypeAdapter(list[DiscoveryResult])
_transitions = TypeAdapter(list[HealthTransition])
_states = TypeAdapter(list[WatchedHealth])
REGISTER_ATTEMPTS = 10
REGISTER_FIRST_PAUSE = 1.0


class DiscoveryClient(ServiceClient):
    service = "discovery"

    async def discover(self, name: str, base_url: str, spec_url: str | None = None,
                       tool_operations: list[str] | None = None) -> DiscoveryResult:
        """`tool_operations`: the operation ids offered as MCP tools (None keeps them)."""
        body: dict[str, Any] = {"name": name, "base_url": base_url, "spec_url": spec_url}
        if tool_operations is not None:
            body["tool_operations"] = tool_operations
        # discovery is idempotent (same spec hash, same registration): safe to retry
        response = await self.request("POST", "/discover", json=body, idempotent=True)
        return DiscoveryResult.model_validate(response.json())

    async def discover_all(self) -> list[DiscoveryResult]:
        response = await self.request("POST", "/discover/all", idempotent=True)
        return _results.validate_python(response.json())

    async def discoveries(self, name: str | None = None, limit: int = 50
                          ) -> list[DiscoveryResult]:
        params: dict[str, Any] = {"limit": limit} | ({"name": name} if name else {})
        return _results.validate_python(await self.get_json("/discoveries", params=params))

    async def poll(self) -> list[HealthTransition]:
        return _transitions.validate_python(await self.post_json("/watch/poll"))

    async def watch_status(self) -> list[WatchedHealth]:
        return _states.validate_python(await self.get_json("/watch/status"))

    async def history(self, service: str | None = None, limit: int = 100
                      ) -> list[HealthTransition]:
        params: dict[str, Any] = {"limit": limit} | ({"service": service} if service else {})
        return _transitions.validate_python(await self.get_json("/watch/history",
                                                                params=params))

    async def register_self(self, name: str, base_url: str) -> DiscoveryResult:
        """Ask the discovery-agent to discover (and so register) the calling service."""
        return await self.discover(name, base_url)


async def _register_with_retries(settings: Settings, spec: ServiceSpec) -> None:
    pause = REGISTER_FIRST_PAUSE
    async with DiscoveryClient.for_service(settings, caller=spec.key) as client:
        for attempt in range(1, REGISTER_ATTEMPTS + 1):
            await asyncio.sleep(pause)  # let this service's own server start listening
            try:
                result = await client.register_self(spec.name, settings.url_for(spec.key))
            except ServiceError as exc:
                log.warning("self-registration failed", attempt=attempt, error=str(exc))
            else:
                if result.status != "failed":
                    log.info("self-registered", status=result.status)
                    return
                log.warning("self-registration failed", attempt=attempt, error=result.error)
            pause = min(pause * 2, 30.0)


def start_self_registration(settings: Settings, spec: ServiceSpec) -> asyncio.Task[None] | None:
    """Call from a service's start-up (kernel lifespan, once clients are ready). When
    `LLMDOCS_DISCOVERY_URL` is set it registers the service in the background, retrying
    while the discovery-agent or this service's server are not up yet; it never delays
    or fails the start. Cancel the task at shutdown (`stop_self_registration`)."""
    if not settings.discovery_url:
        return None
    return asyncio.create_task(_register_with_retries(settings, spec),
                               name=f"self-registration:{spec.key}")


async def stop_self_registration(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def self_registration(settings: Settings, spec: ServiceSpec) -> AsyncIterator[None]:
    """The kernel's announce hook: registers the service while it runs, when
    `LLMDOCS_DISCOVERY_URL` is set."""
    task = start_self_registration(settings, spec)
    try:
        yield
    finally:
        await stop_self_registration(task)
