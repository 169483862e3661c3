"""Log collector: durable sink for events and logs, with query and stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import ServiceSpec
from llmdocs.services.logcollector.schemas import MAX_BATCH_BYTES

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData

GROUP = "logcollector"


def _privacy(app: FastAPI) -> SubjectData:
    from llmdocs.services.logcollector.privacy import subject_data

    return subject_data(app)


def _router() -> APIRouter:
    from llmdocs.services.logcollector.api import router
    from llmdocs.services.logcollector.audit_api import router as audit_router

    return APIRouter(routes=[*router.routes, *audit_router.routes])


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Keep every event of the bus (its own consumer group, so it misses none across
    restarts) and apply retention periodically."""
    from llmdocs.core.audit import audit_stream
    from llmdocs.core.logship import logs_stream
    from llmdocs.core.privacy import pseudonym
    from llmdocs.core.retention import periodically
    from llmdocs.services.logcollector.audit import AuditStore
    from llmdocs.services.logcollector.service import LogStore
    from llmdocs.services.logcollector.settings import LogCollectorSettings

    config = LogCollectorSettings()
    resources = app.state.resources
    store = LogStore(resources.database)
    app.state.logstore = store
    audit = app.state.auditstore = AuditStore(resources.database, lru_cache(4096)(
        partial(pseudonym, app.state.settings)))

    # one transaction per read batch; both ignore ids they already hold
    subscriptions = [resources.events.subscribe_batch(
        GROUP, store.add_shipped, stream=logs_stream(app.state.settings)),
        # the audit trail is kept whatever consume_events says
        resources.events.subscribe_batch(GROUP, audit.add,
                                         stream=audit_stream(app.state.settings))]
    if config.consume_events:
        subscriptions.append(resources.events.subscribe_batch(GROUP, store.add_events))
    try:
        async with periodically("logcollector-retention",
                                config.retention_interval_seconds,
                                partial(store.retain, config, audit)):
            yield
    finally:
        for subscription in subscriptions:
            await subscription.stop()


spec = ServiceSpec(
    key="logcollector",
    name="log-collector",
    title="Log collector",
    description="durable sink for events and logs, with query and stats.",
    scope="logs",
    router=_router,
    calls=(),
    lifespan=_lifespan,
    max_body_bytes=MAX_BATCH_BYTES,
    privacy=_privacy,
)
