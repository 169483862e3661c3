"""The doc-store as one run may read it. A run reads with the orchestrator's own token,
which sees every space; it must not carry another space's text into the document it
stores, so it reads only documents of its own space, and of `default` while that space
is open to every user (`LLMDOCS_SPACES_DEFAULT_ROLE`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmdocs.core.client import NotFound
from llmdocs.core.spaces import DEFAULT_SPACE
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.docstore.schemas import DocumentOut, DocumentPage


def readable(space: str, default_open: bool) -> frozenset[str]:
    """The spaces a run in `space` reads documents from."""
    return frozenset({space, DEFAULT_SPACE} if default_open else {space})


class SpaceDocs:
    """Reads of `docs` limited to `spaces`: a document elsewhere is not found, exactly
    as a missing one, and listings leave it out."""

    def __init__(self, docs: DocStoreClient, spaces: frozenset[str]) -> None:
        self.docs = docs
        self.spaces = spaces

    async def get(self, document_id: str, version: int | None = None) -> DocumentOut:
        doc = await self.docs.get(document_id, version)
        if doc.space not in self.spaces:
            raise NotFound("docstore", 404, {"status": 404,
                                             "detail": f"No document {document_id!r}."})
        return doc

    async def list(self, **params: Any) -> DocumentPage:
        page = await self.docs.list(**params)
        return page.model_copy(update={
            "items": [item for item in page.items if item.space in self.spaces]})

    async def search(self, q: str, limit: int) -> Sequence[DocumentOut]:
        """The best matches readable here (a search hit does not say its space: each is
        read, and those elsewhere dropped)."""
        hits = await self.docs.search(q, limit=limit)
        found = []
        for hit in hits.items:
            try:
                found.append(await self.get(hit.document_id))
            except NotFound:  # elsewhere, or deleted since
                continue
        return found
