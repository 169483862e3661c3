"""Log collector: durable sink for events and logs, with query and stats."""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.logcollector.api import router

    return router


spec = ServiceSpec(
    key="logcollector",
    name="log-collector",
    title="Log collector",
    description="durable sink for events and logs, with query and stats.",
    scope="logs",
    router=_router,
    calls=(),
)
