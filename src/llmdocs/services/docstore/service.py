"""The doc-store's domain logic: documents, immutable versions, blobs, search and
relations; the reads are in `queries.py`, the writes in `ingest.py` and `bulk.py`."""

from __future__ import annotations

from llmdocs.services.docstore.bulk import BulkWrites
from llmdocs.services.docstore.spaces import Spaces


class DocStore(BulkWrites, Spaces):
    """The store the routes use: its reads, single writes, bulk import and spaces."""
