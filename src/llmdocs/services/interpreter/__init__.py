"""Interpreter: turns a request into an intent and
a workflow; output formats; provenance and download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.db import Database
from llmdocs.core.service import SMALL_REQUESTS, Call, ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData

LONG_POLL_SECONDS = 20.0  # how long a wait for a run's end is held open
LONG_CALL_SECONDS = LONG_POLL_SECONDS + 30  # a long poll's answer, or a model's
RUN_ENDS_GROUP = "interpreter-run-ends"


def _router() -> APIRouter:
    from llmdocs.services.interpreter.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from llmdocs.core.app import client_of
    from llmdocs.core.retention import periodically
    from llmdocs.mcp.mount import serving
    from llmdocs.services.docstore.client import DocStoreClient
    from llmdocs.services.gateway.client import GatewayClient
    from llmdocs.services.interpreter.service import RUN_ENDS, Interpreter
    from llmdocs.services.interpreter.settings import InterpreterSettings
    from llmdocs.services.orchestrator.client import OrchestratorClient
    from llmdocs.services.promptstore.client import PromptStoreClient

    resources = app.state.resources
    interpreter = Interpreter(
        app.state.settings, resources.database, resources.events,
        orchestrator=client_of(app, OrchestratorClient), gateway=client_of(app, GatewayClient),
        prompts=client_of(app, PromptStoreClient), docs=client_of(app, DocStoreClient))
    app.state.interpreter = interpreter
    # runs' ends from the bus: an async execution's is kept and announced unasked
    subscription = resources.events.subscribe(RUN_ENDS_GROUP, interpreter.run_ended,
                                              types=RUN_ENDS)
    try:
        async with (periodically("interpreter-retention",
                                 app.state.settings.retention_interval_seconds,
                                 partial(forget_executions, resources.database,
                                         InterpreterSettings().execution_retention_days)),
                    serving(app)):  # MCP at /mcp
            yield
    finally:
        await subscription.stop()


async def forget_executions(database: Database, days: float) -> dict[str, int]:
    """Delete the finished executions older than their retention (each holds a query
    and its answer, which are personal data); 0 keeps them all."""
    from llmdocs.core.retention import cutoff, delete_batches
    from llmdocs.services.interpreter.models import Execution
    from llmdocs.services.orchestrator.schemas import FINISHED

    if not days:
        return {}
    due = (Execution.updated_at < cutoff(days)) & Execution.status.in_(FINISHED)
    return {"executions": await delete_batches(database, Execution, Execution.id, due)}


def _holds(app: FastAPI) -> SubjectData:
    from llmdocs.services.interpreter.held import InterpreterData

    return InterpreterData(app.state.resources.database)


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
    calls=(Call("orchestrator", "llmdocs.services.orchestrator.client:OrchestratorClient",
                waits_up_to=LONG_CALL_SECONDS),
           Call("gateway", "llmdocs.services.gateway.client:GatewayClient",
                waits_up_to=LONG_CALL_SECONDS),
           Call("docstore", "llmdocs.services.docstore.client:DocStoreClient"),
           Call("promptstore", "llmdocs.services.promptstore.client:PromptStoreClient")),
    lifespan=_lifespan,
    max_body_bytes=SMALL_REQUESTS,
    privacy=_holds,
)
