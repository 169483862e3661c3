"""Discovery agent: probes services (health, OpenAPI), analyses
capabilities, generates tools, watches health.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import SMALL_REQUESTS, Call, ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.discovery.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The discovery service, the health watch loop and, if configured, a first
    discovery of every llmdocs service in the background."""
    import httpx

    from llmdocs.core.app import client_of
    from llmdocs.core.fetch import guarded_client
    from llmdocs.core.tls import client_context
    from llmdocs.services.discovery.service import DiscoveryService
    from llmdocs.services.discovery.settings import DiscoverySettings
    from llmdocs.services.orchestrator.client import OrchestratorClient

    settings, resources = app.state.settings, app.state.resources
    bounds = DiscoverySettings()
    timeout = httpx.Timeout(bounds.fetch_timeout_seconds,
                            connect=min(3.0, bounds.fetch_timeout_seconds))
    # our own services answer only a client with a certificate: it presents its own
    verify = client_context(settings, "discovery", public=True) or True
    async with guarded_client(settings.blocked_networks, timeout=timeout,
                              follow_redirects=True, verify=verify) as http:
        service = DiscoveryService(settings, bounds, resources.database, resources.events,
                                   client_of(app, OrchestratorClient), http)
        app.state.discovery = service
        tasks: list[asyncio.Task[object]] = []
        if bounds.discover_on_start:
            tasks.append(asyncio.create_task(service.discover_at_start(),
                                             name="discover-at-start"))
        if bounds.watch_interval_seconds > 0:
            tasks.append(asyncio.create_task(service.watch(), name="health-watch"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task


spec = ServiceSpec(
    key="discovery",
    name="discovery-agent",
    title="Discovery agent",
    description=(
        "probes services (health, OpenAPI), analyses "
        "capabilities, generates tools, watches health."
    ),
    scope="services",
    router=_router,
    calls=(Call("orchestrator", "llmdocs.services.orchestrator.client:OrchestratorClient"),),
    lifespan=_lifespan,
    max_body_bytes=SMALL_REQUESTS,
)
