"""A document's pages: the rendered document with its versions, a side-by-side diff of
two versions, its downloads in every format, and its provenance."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from llmdocs.core.client import NotFound, ServiceError
from llmdocs.core.errors import Problem
from llmdocs.formats import EXTENSIONS, FORMATS, MEDIA_TYPES, normalize_format, slug
from llmdocs.formats import render as render_format
from llmdocs.services.analysis.client import AnalysisClient
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.docstore.schemas import DocumentOut
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.web import rendering
from llmdocs.services.web.pages import PageRoute, User, render, signed_in
from llmdocs.services.web.provenance import timeline

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DocumentId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
MARKDOWN = frozenset({"markdown", "md"})
# a stored format's name as pygments knows it, where they differ
LEXERS = {"yml": "yaml", "txt": "text", "plain": "text", "openapi": "yaml"}


def _is_markdown(doc: DocumentOut) -> bool:
    return doc.kind == "text" and (doc.format in MARKDOWN or doc.media_type.startswith(
        "text/markdown"))


def _downloads(doc: DocumentOut) -> list[tuple[str, str]]:
    """(format, label) of each download: every output format of a Markdown document, the
    stored file of any other."""
    if _is_markdown(doc):
        return [(fmt, f"{fmt.upper()} (.{EXTENSIONS[fmt]})") for fmt in FORMATS]
    return [("original", f"Original ({doc.format or doc.media_type})")]


async def _stale_change(user: User, doc: DocumentOut) -> dict[str, Any] | None:
    """What changed under a stale document, as the analysis service's finding says."""
    if not doc.stale:
        return None
    change: dict[str, Any] = {"reason": doc.stale_reason, "finding": doc.stale_finding,
                              "changes": []}
    if doc.stale_finding:
        try:
            finding = await user.client(AnalysisClient).finding(doc.stale_finding)
        except ServiceError as exc:  # the banner stands without the details
            change["unavailable"] = str(exc.problem.get("detail") or exc)
            return change
        mine = [a for a in finding.documents if a.document_id == doc.document_id]
        change["changes"] = (mine[0].changes if mine else finding.diff.ordered())[:20]
        change["source"] = finding.source
    return change


@router.get("/documents/{document_id}")
async def document(request: Request, document_id: DocumentId, version: Version = None,
                   user: User = signed_in) -> Response:
    """The document (the current version, or `version`), rendered, with its contents."""
    doc = await user.client(DocStoreClient).get(document_id, version)
    body = None
    toc: tuple[rendering.Heading, ...] = ()
    if _is_markdown(doc) and doc.content is not None:
        shown = rendering.markdown_of(doc.content_hash, doc.content)
        body, toc = shown.html, shown.toc
    elif doc.content is not None:
        fmt = doc.format.lower()
        body = rendering.code(doc.content, LEXERS.get(fmt, fmt))
    return render(request, "document.html", doc=doc, body=body, toc=toc,
                  shown_version=version or doc.version,
                  downloads=_downloads(doc), stale=await _stale_change(user, doc))


@router.get("/documents/{document_id}/versions")
async def versions(request: Request, document_id: DocumentId, version: Version = None,
                   user: User = signed_in) -> Response:
    """The version picker and comparison: htmx puts them into the document page after
    it shows (one doc-store call fewer before the reader sees the document); without
    script, a page of their own."""
    listed = (await user.client(DocStoreClient).versions(document_id)).items
    current = next((v for v in listed if v.is_current), None)
    shown = version or (current.version if current else None)
    template = "_versions.html" if request.headers.get("HX-Request") else "versions.html"
    page = render(request, template, document_id=document_id, versions=listed,
                  shown_version=shown, title=current.title if current else "")
    page.headers["Vary"] = "HX-Request"
    return page


@router.get("/documents/{document_id}/diff")
async def diff(request: Request, document_id: DocumentId,
               old: Annotated[int, Query(ge=1, le=2**31 - 1)],
               new: Annotated[int, Query(ge=1, le=2**31 - 1)],
               user: User = signed_in) -> Response:
    """Two versions side by side, changes marked."""
    docs = user.client(DocStoreClient)
    before, after, listed = await asyncio.gather(
        docs.version(document_id, old), docs.version(document_id, new),
        docs.versions(document_id))
    if before.content is None or after.content is None:
        raise Problem(400, "Only text versions can be compared line by line; these are "
                      "binary files: download them instead.")
    return render(request, "diff.html", document_id=document_id, title=after.title,
                  old=before, new=after, versions=listed.items,
                  rows=rendering.side_by_side(before.content, after.content))


@router.get("/documents/{document_id}/download")
async def download(document_id: DocumentId, user: User = signed_in,
                   format: Annotated[str, Query(max_length=20)] = "original",
                   version: Version = None) -> Response:
    """The document as a file: the stored one, or a Markdown document in `format`."""
    docs = user.client(DocStoreClient)
    if format == "original":
        data, media_type, name = await docs.download(document_id, version)
        return Response(data, media_type=media_type, headers=_attachment(name))
    try:
        fmt = normalize_format(format)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    doc = await docs.get(document_id, version)
    if not _is_markdown(doc) or doc.content is None:
        raise Problem(400, f"Only Markdown documents convert to {fmt}; download the "
                      "original instead.")
    made = render_format(rendering.as_generated(doc.title, doc.content, doc.metadata), fmt,
                         basename=slug(doc.title or document_id))
    return Response(made.content, media_type=MEDIA_TYPES[fmt],
                    headers=_attachment(made.filename))


def _attachment(name: str) -> dict[str, str]:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:200] or "document"
    return {"Content-Disposition": f'attachment; filename="{safe}"'}


@router.get("/documents/{document_id}/provenance")
async def provenance(request: Request, document_id: DocumentId,
                     user: User = signed_in) -> Response:
    """How the document was made: steps, services, prompts, model calls, sources, scores."""
    doc = await user.client(DocStoreClient).get(document_id)  # a 404 for others' spaces
    try:
        record: dict[str, Any] | None = await user.client(InterpreterClient).provenance(
            document_id)
    except NotFound:  # stored, not generated: it has no provenance
        record = None
    return render(request, "provenance.html", doc=doc, record=record,
                  view=timeline(record) if record else None)
