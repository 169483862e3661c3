"""Doc store: documents, versions, binary artifacts, search and provenance records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from llmdocs.core.service import ServiceSpec

if TYPE_CHECKING:
    from llmdocs.core.privacy import SubjectData


def _privacy(app: FastAPI) -> SubjectData:
    from llmdocs.services.docstore.privacy import subject_data

    return subject_data(app)


def _router() -> APIRouter:
    from llmdocs.services.docstore.api import router

    return router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the blob store and put the service object where the routes find it."""
    from llmdocs.core.health import DependencyCheck
    from llmdocs.services.docstore.blobs import blob_store
    from llmdocs.services.docstore.service import DocStore
    from llmdocs.services.docstore.settings import DocStoreSettings

    store_settings = DocStoreSettings()
    blobs = blob_store(app.state.settings, store_settings)
    app.state.docstore_settings = store_settings
    app.state.docstore = DocStore(app.state.resources, blobs)
    app.state.memberships = app.state.docstore.memberships  # its own table, no call
    app.state.extra_checks.append(DependencyCheck("blobs", blobs.ping, kind="storage"))
    yield


# the reads of a document's contents the audit trail records
AUDITED_READS = frozenset({"/documents/{document_id}", "/documents/{document_id}/download",
                           "/documents/{document_id}/versions/{version}"})

spec = ServiceSpec(
    key="docstore",
    name="doc-store",
    title="Doc store",
    description="documents, versions, binary artifacts, search and provenance records.",
    scope="docs",
    router=_router,
    calls=(),
    lifespan=lifespan,
    audited_reads=AUDITED_READS,
    privacy=_privacy,
)
