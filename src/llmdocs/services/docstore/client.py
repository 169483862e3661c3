"""Typed client of the doc-store: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class DocStoreClient(ServiceClient):
    service = "docstore"
