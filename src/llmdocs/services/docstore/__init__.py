"""Doc store: documents, versions, binary artifacts, search and provenance records."""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.core.service import ServiceSpec


def _router() -> APIRouter:
    from llmdocs.services.docstore.api import router

    return router


spec = ServiceSpec(
    key="docstore",
    name="doc-store",
    title="Doc store",
    description="documents, versions, binary artifacts, search and provenance records.",
    scope="docs",
    router=_router,
    calls=(),
)
