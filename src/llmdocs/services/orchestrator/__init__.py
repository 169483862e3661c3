"""Orchestrator: service registry, workflow definitions and runs (LangGraph), tool catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.orchestrator.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The workflow runner: a checkpointer on the ecosystem's database, and the lease
    watch that resumes runs a dead replica left behind; what tool calls may carry."""
    from llmdocs.services.orchestrator.settings import OrchestratorSettings
    from llmdocs.services.orchestrator.workflows import Runner, open_checkpointer

    settings = app.state.settings
    app.state.tool_settings = OrchestratorSettings()
    async with open_checkpointer(settings.database_url) as checkpointer:
        runner = Runner(settings, app.state.resources, checkpointer)
        app.state.runner = runner
        await runner.start()
        try:
            yield
        finally:
            await runner.close()


spec = ServiceSpec(
    key="orchestrator",
    name="orchestrator",
    title="Orchestrator",
    description="service registry, workflow definitions and runs (LangGraph), tool catalog.",
    scope="workflows",
    router=_router,
    calls=("gateway", "promptstore", "docstore"),
    lifespan=_lifespan,
    # not SMALL_REQUESTS: a registration carries a whole analysed spec (the discovery
    # bounds allow 500k schema nodes after inlining), the largest body it takes
    max_body_bytes=32 * 1024 * 1024,
)
