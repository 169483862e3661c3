"""Log collector: durable sink for events and logs, with query and stats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import structlog
from fastapi import APIRouter, FastAPI

from llmdocs.core.service import ServiceSpec
from llmdocs.services.logcollector.schemas import MAX_BATCH_BYTES

log = structlog.get_logger(__name__)
GROUP = "logcollector"


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
    from llmdocs.services.logcollector.audit import AuditStore
    from llmdocs.services.logcollector.service import LogStore
    from llmdocs.services.logcollector.settings import LogCollectorSettings

    config = LogCollectorSettings()
    resources = app.state.resources
    store = LogStore(resources.database)
    app.state.logstore = store
    audit = app.state.auditstore = AuditStore(resources.database)

    async def retain() -> None:
        while True:
            try:
                removed = await store.enforce_retention(
                    timedelta(days=config.retention_days), config.max_logs, config.max_events)
                removed["audit"] = await audit.enforce_retention(
                    timedelta(days=config.audit_retention_days))
                if any(removed.values()):
                    log.info("retention applied", **removed)
            except Exception as exc:  # a failed round is retried at the next one
                log.warning("retention failed", error=repr(exc))
            await asyncio.sleep(config.retention_interval_seconds)

    # one transaction per read batch; both ignore ids they already hold
    subscriptions = [resources.events.subscribe_batch(
        GROUP, store.add_shipped, stream=logs_stream(app.state.settings)),
        # the audit trail is kept whatever consume_events says
        resources.events.subscribe_batch(GROUP, audit.add,
                                         stream=audit_stream(app.state.settings))]
    if config.consume_events:
        subscriptions.append(resources.events.subscribe_batch(GROUP, store.add_events))
    retention = (asyncio.create_task(retain(), name="logcollector-retention")
                 if config.retention_interval_seconds > 0 else None)
    try:
        yield
    finally:
        if retention is not None:
            retention.cancel()
            with suppress(asyncio.CancelledError):
                await retention
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
)
