"""LLM gateway: the one door to every LLM provider:
routing, security filter, cache, usage, cost, budgets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.db import Database
from llmdocs.core.service import ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData


def _router() -> APIRouter:
    from llmdocs.services.gateway.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the providers from configuration (tests may put a GatewaySettings in
    `app.state.gateway_settings` first), start the recorder, add provider health."""
    from llmdocs.core.health import DependencyCheck
    from llmdocs.core.retention import periodically
    from llmdocs.services.gateway.service import GatewayService
    from llmdocs.services.gateway.settings import GatewaySettings

    settings = getattr(app.state, "gateway_settings", None) or GatewaySettings()
    resources = app.state.resources
    service = GatewayService(settings, resources.database, resources.events, resources.cache,
                             app.state.settings.cache_url, app.state.metrics.registry)
    await service.start(warm=settings.warm_local)
    app.state.gateway = service
    app.state.extra_checks += [
        DependencyCheck(f"provider:{state.name}", partial(state.provider.ping),
                        kind="provider")
        for state in service.states
    ]
    try:
        async with periodically("gateway-retention",
                                app.state.settings.retention_interval_seconds,
                                partial(forget_usage, resources.database,
                                        settings.usage_retention_days)):
            yield
    finally:
        await service.aclose()


async def forget_usage(database: Database, days: float) -> dict[str, int]:
    """Delete usage rows older than their retention (0: keep them all)."""
    from llmdocs.core.retention import cutoff, delete_batches
    from llmdocs.services.gateway.models import UsageRecord

    if not days:
        return {}
    due = UsageRecord.created_at < cutoff(days)
    return {"usage": await delete_batches(database, UsageRecord, UsageRecord.id, due)}


def _holds(app: FastAPI) -> SubjectData:
    from llmdocs.services.gateway.held import GatewayData

    return GatewayData(app.state.gateway)


spec = ServiceSpec(
    key="gateway",
    name="llm-gateway",
    title="LLM gateway",
    description=(
        "the one door to every LLM provider: "
        "routing, security filter, cache, usage, cost, budgets."
    ),
    scope="llm",
    router=_router,
    calls=(),
    lifespan=_lifespan,
    # a chat request's messages: room for a model with a million-token context
    max_body_bytes=16 * 1024 * 1024,
    privacy=_holds,
)
