"""Prompt store: versioned prompts, labels, A/B tests and prompt analytics (its events
are described where `prompts.py` names them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import MODEL_ANSWER_SECONDS, Call, ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData

ANALYTICS_GROUP = "promptstore-analytics"
ANALYTICS_LINGER_SECONDS = 1.0


def _privacy(app: FastAPI) -> SubjectData:
    from llmdocs.services.promptstore.privacy import subject_data

    return subject_data(app)


def _router() -> APIRouter:
    from llmdocs.services.promptstore.api import router

    return router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Seed the prompts other services need, then run the analytics consumer."""
    from llmdocs.core.app import client_of
    from llmdocs.services.gateway.client import GatewayClient
    from llmdocs.services.promptstore.prompts import LLM_COMPLETED, PROMPT_USED
    from llmdocs.services.promptstore.seeding import seed
    from llmdocs.services.promptstore.service import PromptStore

    resources = app.state.resources
    store = PromptStore(resources.database, resources.cache, resources.events,
                        client_of(app, GatewayClient))
    app.state.promptstore = store
    await seed(store)
    # analytics may trail by a second: fewer, larger batches keep the write lock free
    subscription = resources.events.subscribe_batch(ANALYTICS_GROUP, store.apply_events,
                                                    types=[PROMPT_USED, LLM_COMPLETED],
                                                    linger=ANALYTICS_LINGER_SECONDS)
    try:
        yield
    finally:
        await subscription.stop()


# the reads of a prompt's text the audit trail records, as route templates (with the
# router's /api/v1 prefix: without it they matched no route and went unrecorded)
AUDITED_READS = frozenset({"/api/v1/prompts/{ref}", "/api/v1/prompts/by-name/{name}",
                           "/api/v1/prompts/{ref}/versions/{version}"})

spec = ServiceSpec(
    key="promptstore",
    name="prompt-store",
    title="Prompt store",
    description="versioned prompts, labels, A/B tests and prompt analytics.",
    scope="prompts",
    router=_router,
    calls=(Call("gateway", "llmdocs.services.gateway.client:GatewayClient",
                waits_up_to=MODEL_ANSWER_SECONDS),),
    lifespan=_lifespan,
    # a prompt's templates and variations: far beyond any real one
    max_body_bytes=4 * 1024 * 1024,
    audited_reads=AUDITED_READS,
    privacy=_privacy,
)
