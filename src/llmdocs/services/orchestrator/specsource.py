"""Where a documentation run's OpenAPI spec comes from: a stored document, a URL, or
the service registry; parsed specs are kept by content hash, as YAML is slow to parse."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache

from llmdocs.core.client import NotFound
from llmdocs.core.fetch import Network
from llmdocs.openapi import (
    SpecBounds,
    SpecError,
    Unreachable,
    analyse,
    fetch_spec_url,
    parse_spec,
)
from llmdocs.services.docstore.schemas import DocumentOut, DocumentSummary
from llmdocs.services.orchestrator import apisections
from llmdocs.services.orchestrator.errors import Unknown
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import DocRequest
from llmdocs.services.orchestrator.spacedocs import SpaceDocs
from llmdocs.services.orchestrator.workflow_state import Trace, WorkflowError


class SpecSource:
    """A run's spec, with the parsed ones of earlier runs."""

    def __init__(self, registry: Registry, bounds: SpecBounds,
                 blocked_networks: Sequence[Network]) -> None:
        self.registry = registry
        self.bounds = bounds
        self.blocked_networks = blocked_networks  # a spec URL is never fetched from these
        self._specs: LRUCache[tuple[str, str], dict[str, Any]] = LRUCache(maxsize=64)

    async def of(self, request: DocRequest, docs: SpaceDocs, trace: Trace) -> dict[str, Any]:
        """The OpenAPI spec: stored in the doc-store, at a URL, or from the registry."""
        bounds = self.bounds
        source: dict[str, Any] | None = None
        if request.spec_document_id:
            source = await self.stored(docs, request.spec_document_id, trace)
        elif request.spec_url:
            # a redirect loop ends as Unreachable: too many redirects
            try:
                url, content, doc = await fetch_spec_url(
                    request.spec_url, self.blocked_networks, bounds)
            except Unreachable as exc:
                raise WorkflowError(f"spec URL: {exc}") from None
            except SpecError as exc:
                raise WorkflowError(f"spec URL {request.spec_url} does not serve an "
                                    f"OpenAPI spec: {exc}") from None
            trace.called("spec-url", f"GET {url}")
            try:
                return apisections.spec_context(doc, analyse(url, doc, bounds), "url", url,
                                                hashlib.sha256(content).hexdigest(), bounds)
            except SpecError as exc:
                raise WorkflowError(f"spec URL {request.spec_url}: {exc}") from None
        else:
            source = await self.for_service(docs, str(request.service), trace)
            if source is None:
                return await self.registered(str(request.service), trace)
        return source

    async def stored(self, docs: SpaceDocs, document_id: str, trace: Trace,
                           known: DocumentSummary | None = None) -> dict[str, Any]:
        """A spec from the doc-store. Parsing is the slow part (YAML), so what a spec
        says is kept by content hash; with the version and hash already listed
        (`known`), a spec seen before needs no fetch at all."""
        parsed = self._specs.get((document_id, known.content_hash)) if known is not None else None
        doc: DocumentSummary | None = known
        if parsed is None:
            full = await document(docs, document_id, "spec", trace)
            key = (document_id, full.content_hash)
            parsed = self._specs.get(key) or self._parsed(document_id, full.content or "")
            self._specs[key] = parsed
            doc = full
        assert doc is not None
        # the doc-store's hash is the SHA-256 of the bytes it stores and serves
        return {**parsed, "spec": {
            **parsed["spec"], "sha256": doc.content_hash, "document_id": doc.document_id,
            "document_version": doc.version, "content_hash": doc.content_hash}}

    def _parsed(self, document_id: str, content: str) -> dict[str, Any]:
        try:
            parsed = parse_spec(content.encode(), self.bounds)
            analysis = analyse(f"docstore:{document_id}", parsed, self.bounds)
            return apisections.spec_context(parsed, analysis, "doc-store",
                                            f"docstore:{document_id}", None,
                                            self.bounds)
        except SpecError as exc:
            raise WorkflowError(f"document {document_id} is not a usable OpenAPI spec: "
                                f"{exc}") from None

    async def for_service(self, docs: SpaceDocs, service: str, trace: Trace
                                ) -> dict[str, Any] | None:
        """A spec stored in the doc-store for this service (tag `openapi`, matched on
        the `service` metadata or the title)."""
        wanted = _slug(service)
        trace.called("doc-store", "list documents tag=openapi")
        page = await docs.list(tag="openapi", limit=100)
        for item in page.items:
            names = {_slug(str(item.metadata.get("service", ""))), _slug(item.title)}
            if any(n and (n == wanted or wanted in n.split("-") or n.startswith(wanted))
                   for n in names):
                return await self.stored(docs, item.document_id, trace, item)
        return None

    async def registered(self, service: str, trace: Trace) -> dict[str, Any]:
        trace.called("orchestrator", f"registry get {service}")
        for name in dict.fromkeys((service, _slug(service), f"{_slug(service)}-service")):
            try:
                detail = await self.registry.get(name)
            except Unknown:  # try the next spelling
                continue
            return apisections.registry_context(
                detail.title, detail.version, detail.operations, {
                    "origin": "registry", "url": detail.spec_url, "sha256": None,
                    "sha256_of": apisections.SHA256_OF["registry"],
                    "canonical_sha256": detail.spec_hash, "title": detail.title,
                    "version": detail.version, "service": detail.name},
                self.bounds)
        raise WorkflowError(f"no OpenAPI spec found for {service!r}: store one in the "
                            "doc-store with tag 'openapi' or register the service")


async def document(docs: SpaceDocs, document_id: str, role: str, trace: Trace) -> DocumentOut:
    trace.called("doc-store", "get document")
    try:
        return await docs.get(document_id)
    except NotFound:
        raise WorkflowError(f"{role} document {document_id} not found") from None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
