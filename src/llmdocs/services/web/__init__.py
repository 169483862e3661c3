"""Web: the portal people read documentation in: sign-in, search, documents and their
provenance, asking for new ones; server-rendered HTML with htmx, no build step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import MODEL_ANSWER_SECONDS, SMALL_REQUESTS, Call, ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData


def _router() -> APIRouter:
    from llmdocs.services.web.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The sessions and the templates, where the pages find them."""
    from llmdocs.services.web.pages import templates
    from llmdocs.services.web.sessions import Sessions
    from llmdocs.services.web.settings import WebSettings

    config = WebSettings()
    app.state.web_settings = config
    app.state.sessions = Sessions(app.state.settings, config, app.state.resources)
    app.state.templates = templates()
    yield


def _holds(app: FastAPI) -> SubjectData:
    from llmdocs.services.web.held import WebData

    return WebData(app.state.resources.database)


# every service a page shows; called with the signed-in user's on-behalf-of token
CALLS = (
    Call("docstore", "llmdocs.services.docstore.client:DocStoreClient"),
    Call("interpreter", "llmdocs.services.interpreter.client:InterpreterClient",
         waits_up_to=MODEL_ANSWER_SECONDS),
    Call("orchestrator", "llmdocs.services.orchestrator.client:OrchestratorClient"),
    Call("gateway", "llmdocs.services.gateway.client:GatewayClient"),
    Call("promptstore", "llmdocs.services.promptstore.client:PromptStoreClient"),
    Call("discovery", "llmdocs.services.discovery.client:DiscoveryClient"),
    Call("logcollector", "llmdocs.services.logcollector.client:LogCollectorClient"),
    Call("analysis", "llmdocs.services.analysis.client:AnalysisClient"),
)

spec = ServiceSpec(
    key="web",
    name="web",
    title="Web portal",
    description=("The portal: search, documents with their versions and provenance, "
                 "asking for documents, runs, services, prompts and usage, in a browser."),
    scope="web",
    router=_router,
    calls=CALLS,
    lifespan=_lifespan,
    max_body_bytes=SMALL_REQUESTS,
    browsers=True,
    privacy=_holds,
)
