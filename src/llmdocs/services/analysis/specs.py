"""The specs and documents a request names, read and bounded: from the doc-store (with
the caller's rights), a URL (the guarded fetch a run's `spec_url` uses), or inline."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog

from llmdocs.claims import check_document
from llmdocs.core.client import Forbidden, NotFound
from llmdocs.core.config import Settings
from llmdocs.core.tls import client_context
from llmdocs.openapi import SpecBounds, SpecError, fetch_spec_url, parse_spec, spec_hash
from llmdocs.openapi.diff import Diff, diff
from llmdocs.services.analysis.errors import BadSpec, NotMarkdown, Refused, UnknownDocument
from llmdocs.services.analysis.schemas import (
    CheckOut,
    InlineSpec,
    SpecRef,
    StoredDocument,
    StoredSpec,
    TextDocument,
    TextSpec,
)
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.docstore.schemas import DocumentOut

log = structlog.get_logger(__name__)
MARKDOWN_FORMATS = frozenset({"markdown", "md", "txt", "text"})


# a part of the wrong kind where the OpenAPI schema wants another (`paths: {"/a": 5}`)
# passes parsing, which checks only the document's outline
MALFORMED = (TypeError, AttributeError, KeyError, ValueError)


def malformed(exc: Exception) -> BadSpec:
    log.warning("malformed spec", error=repr(exc))
    return BadSpec(f"A spec is malformed: a part is not of the kind OpenAPI says "
                   f"({type(exc).__name__}: {str(exc)[:200]}).",
                   [{"field": "spec", "message": "malformed"}])


@dataclass(frozen=True)
class Spec:
    """A parsed spec and what names its version: a doc-store version number, or the
    canonical SHA-256 of a spec from anywhere else."""

    doc: dict[str, Any]
    label: str


class Specs:
    def __init__(self, settings: Settings, bounds: SpecBounds, docs: DocStoreClient) -> None:
        self.settings, self.bounds, self.docs = settings, bounds, docs

    async def stored(self, document_id: str, version: int | None, field: str) -> DocumentOut:
        """A doc-store document, as the client's token (the caller's, inside
        `acting_for`) may read it."""
        try:
            return await self.docs.get(document_id, version)
        except NotFound:
            at = f" version {version}" if version else ""
            raise UnknownDocument(f"The doc-store has no document {document_id}{at}.", [
                {"field": f"{field}.document_id", "message": "no such document"}]) from None
        except Forbidden as exc:
            raise Refused(f"Document {document_id}: {exc.problem.get('detail', exc)}",
                          [{"field": f"{field}.document_id",
                            "message": "not readable with this token"}]) from None

    async def load(self, ref: SpecRef, field: str) -> Spec:
        """The spec `ref` names, parsed within the bounds; any failure is a `BadSpec`
        naming the field and the problem."""
        try:
            if isinstance(ref, StoredSpec):
                got = await self.stored(ref.document_id, ref.version, field)
                if got.content is None:
                    raise SpecError(f"document {got.document_id} is binary, not a spec")
                doc = await self._parse(got.content.encode())
                # the summary's version is the document's current one, not the one read
                return Spec(doc, str(ref.version or got.version))
            if isinstance(ref, InlineSpec | TextSpec):
                raw = ref.content.encode() if isinstance(ref, TextSpec) \
                    else json.dumps(ref.spec).encode()
                if len(raw) > self.bounds.max_spec_bytes:
                    raise SpecError(f"the spec is {len(raw)} bytes; the limit is "
                                    f"{self.bounds.max_spec_bytes}")
                doc = await self._parse(raw)
            else:
                # a registered service's spec: ours answer only with a certificate
                verify = client_context(self.settings, "analysis", public=True) or True
                _, _, doc = await fetch_spec_url(ref.url, self.settings.blocked_networks,
                                                 self.bounds, verify)
        except SpecError as exc:
            raise BadSpec(f"The {field} spec cannot be used: {exc}.",
                          [{"field": field, "message": str(exc)}]) from None
        return Spec(doc, spec_hash(doc))

    async def _parse(self, raw: bytes) -> dict[str, Any]:
        # YAML of megabytes is CPU work: keep the event loop free
        return await asyncio.to_thread(parse_spec, raw, self.bounds)

    async def diff(self, base: Spec, head: Spec) -> Diff:
        try:
            return await asyncio.to_thread(diff, base.doc, head.doc, self.bounds)
        except SpecError as exc:  # a $ref cycle, or one leaving the document
            raise BadSpec(f"The specs cannot be compared: {exc}.",
                          [{"field": "spec", "message": str(exc)}]) from None
        except MALFORMED as exc:
            raise malformed(exc) from None

    async def check(self, markdown: str, spec: Spec) -> CheckOut:
        """The document check, the one the document-generation review uses."""
        try:
            checked = await asyncio.to_thread(check_document, markdown, spec.doc, self.bounds)
        except SpecError as exc:
            raise BadSpec(f"The spec cannot be used: {exc}.",
                          [{"field": "spec", "message": str(exc)}]) from None
        except MALFORMED as exc:
            raise malformed(exc) from None
        return CheckOut.model_validate(checked.to_json())

    async def markdown(self, ref: StoredDocument | TextDocument) -> str:
        """The Markdown text of the document to check."""
        if isinstance(ref, TextDocument):
            return ref.content
        got = await self.stored(ref.document_id, ref.version, "document")
        if got.content is None or got.format not in MARKDOWN_FORMATS:
            raise NotMarkdown(f"Document {got.document_id} is {got.format} "
                              f"({got.media_type}), not Markdown text.",
                              [{"field": "document.document_id",
                                "message": "not Markdown text"}])
        return got.content
