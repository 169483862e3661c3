"""Interpreter: turns a request into an intent and
a workflow; output formats; provenance and download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import SMALL_REQUESTS, ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.interpreter.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from llmdocs.services.interpreter.service import Interpreter

    interpreter = Interpreter(app.state.settings, app.state.resources.database)
    app.state.interpreter = interpreter
    try:
        yield
    finally:
        await interpreter.aclose()


spec = ServiceSpec(
    key="interpreter",
    name="interpreter",
    title="Interpreter",
    description=(
        "turns a request into an intent and "
        "a workflow; output formats; provenance and download."
    ),
    scope="queries",
    router=_router,
    calls=("orchestrator", "gateway", "docstore", "promptstore"),
    lifespan=_lifespan,
    max_body_bytes=SMALL_REQUESTS,
)
