"""Analysis: API diffs, document checks (claims vs sources), staleness findings and
regeneration triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import Call, ServiceSpec
from llmdocs.services.interpreter import LONG_CALL_SECONDS

GROUP = "analysis"
# two specs and some JSON around them: each spec is bounded again when it is parsed
MAX_BODY_BYTES = 12 * 2**20


def _router() -> APIRouter:
    from llmdocs.services.analysis.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The service, and its consumer of new spec versions, registrations and finished
    runs (its own group, so it misses none across restarts)."""
    from llmdocs.core.app import client_of
    from llmdocs.openapi import SpecBounds
    from llmdocs.services.analysis.service import WATCHED, Analysis
    from llmdocs.services.analysis.settings import AnalysisSettings
    from llmdocs.services.analysis.specs import Specs
    from llmdocs.services.docstore.client import DocStoreClient
    from llmdocs.services.interpreter.client import InterpreterClient
    from llmdocs.services.orchestrator.client import OrchestratorClient

    config, resources = AnalysisSettings(), app.state.resources
    specs = Specs(app.state.settings, SpecBounds(), client_of(app, DocStoreClient))
    analysis = Analysis(config, specs, resources.database, resources.events,
                        client_of(app, InterpreterClient), client_of(app, OrchestratorClient))
    app.state.analysis = analysis
    subscription = resources.events.subscribe(GROUP, analysis.on_event, types=WATCHED) \
        if config.consume_events else None
    try:
        yield
    finally:
        if subscription is not None:
            await subscription.stop()
        await analysis.close()


spec = ServiceSpec(
    key="analysis",
    name="analysis",
    title="Analysis",
    description=("API diffs, document checks (claims vs sources), staleness findings "
                 "and regeneration triggers."),
    scope="analysis",
    router=_router,
    calls=(Call("docstore", "llmdocs.services.docstore.client:DocStoreClient"),
           Call("interpreter", "llmdocs.services.interpreter.client:InterpreterClient",
                waits_up_to=LONG_CALL_SECONDS),
           # where a registered service's spec is, when the registry says it changed
           Call("orchestrator", "llmdocs.services.orchestrator.client:OrchestratorClient")),
    lifespan=_lifespan,
    max_body_bytes=MAX_BODY_BYTES,
)
