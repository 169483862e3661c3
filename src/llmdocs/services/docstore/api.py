"""HTTP routes of the doc-store. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from llmdocs.core.auth import Principal, require
from llmdocs.core.bodies import inline_schema, request_body
from llmdocs.core.db import INT4_MAX, StorableText, UtcDateTime, storable
from llmdocs.core.errors import Problem, domain_problems, invalid_request
from llmdocs.core.filenames import hidden_characters
from llmdocs.core.idempotency import IdempotencyKeyHeader
from llmdocs.core.spaces import Spaces
from llmdocs.services.docstore import errors
from llmdocs.services.docstore.bulk import ingest_ndjson
from llmdocs.services.docstore.cursors import MAX_CURSOR
from llmdocs.services.docstore.ingest import Content, Idempotency
from llmdocs.services.docstore.queries import ADMIN, BINARY_FORMATS, TEXT_FORMATS, Filters
from llmdocs.services.docstore.schemas import (
    DiffOut,
    DocumentCreate,
    DocumentFields,
    DocumentOut,
    DocumentPage,
    DocumentPatch,
    DocumentSummary,
    DocumentUpdate,
    Lineage,
    ProvenanceOut,
    RelationIn,
    RelationList,
    RelationType,
    RollbackRequest,
    SearchPage,
    StaleMark,
    StoredDocument,
    VersionDetail,
    VersionList,
)
from llmdocs.services.docstore.service import DocStore
from llmdocs.services.docstore.settings import DocStoreSettings
from llmdocs.services.docstore.spaces_api import router as spaces_router

STATUS: dict[type[errors.DocStoreError], int] = {
    errors.BadInput: 400, errors.Forbidden: 403, errors.NotFoundError: 404,
    errors.WrongState: 409, errors.Exists: 409,
    errors.StaleVersion: 412, errors.Rejected: 422, errors.BlobsUnavailable: 503,
}


router = APIRouter(tags=["doc-store"], dependencies=[Depends(domain_problems(STATUS))])
M = TypeVar("M", bound=BaseModel)
Reader = Annotated[Principal, Depends(require("docs:read"))]
Writer = Annotated[Principal, Depends(require("docs:write"))]
Stale = Annotated[bool | None, Query(
    description="true: only documents whose sources changed; false: only the others")]
IfMatch = Annotated[str | None, Header(description='"<version>" from the ETag; stale → 412')]
# a document id in a path: text a column can hold (a NUL is a 422, not a database error)
DocumentId = Annotated[StorableText, Path()]
VersionNumber = Annotated[int, Path(ge=1, le=INT4_MAX)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR,
                                     description="next_cursor of the page before")]
ENVELOPE_BYTES = 64 * 1024  # room for JSON/multipart framing around the content
_SEPARATOR = re.compile(r"[/\\]")  # controls are among the hidden characters


def write_body(model: type[DocumentCreate] | type[DocumentUpdate]) -> dict[str, Any]:
    """A write's body: JSON, or a file with the other fields as form fields (tags
    comma-separated, metadata, provenance and relations as JSON text)."""
    form = {name: {"type": "string"} for name in model.model_fields if name != "content"}
    return request_body(**{
        "application/json": inline_schema(model),
        "multipart/form-data": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, **form}}})


def store_of(request: Request) -> DocStore:
    store: DocStore = request.app.state.docstore
    return store


def limit_of(request: Request) -> int:
    store_settings: DocStoreSettings = request.app.state.docstore_settings
    return store_settings.max_upload_bytes


def too_large(limit: int) -> Problem:
    return Problem(413, f"The upload is larger than the limit of {limit} bytes "
                        "(LLMDOCS_DOCSTORE_MAX_UPLOAD_BYTES).")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` (declared or actual)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit - ENVELOPE_BYTES)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit - ENVELOPE_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)  # one chunk (an in-process call) is not copied


def parse_model(model: type[M], data: Any, where: str = "body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc, where) from None


def parse_json(model: type[M], body: bytes) -> M:
    """The body parsed and validated in one pass. JSON that pydantic refuses goes the
    stdlib's way, for its message, and because the stdlib takes a lone surrogate, which
    `Content.of_text` then refuses as not valid Unicode."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise invalid_request(exc) from None
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": f"invalid JSON: {exc}",
                                       "type": "json_invalid"}]) from None
    except RecursionError:
        raise RequestValidationError([{"loc": ("body",), "msg": "JSON nested too deeply to read",
                                       "type": "json_invalid"}]) from None
    return parse_model(model, data)


def expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 9):  # a version is an int4
        raise errors.BadInput('If-Match must be the document\'s ETag, e.g. "3".', field="If-Match")
    return int(tag)


def safe_filename(name: str | None) -> str | None:
    """A plain name that shows as what it is (see `hidden_characters`)."""
    if not name:
        return None
    hidden = hidden_characters(name)
    if hidden or _SEPARATOR.search(name) or name.strip(". ") == "" or ".." in name \
            or len(name) > 255:
        why = f" (it holds {', '.join(dict.fromkeys(hidden))})" if hidden else ""
        raise Problem(422, "The file name must be a plain name: no path separators, '..', "
                           "control characters, or bidirectional, zero-width or other "
                           f"invisible characters{why}.",
                      errors=[{"field": "file", "message": f"unsafe file name {name!a}"}])
    return name


def format_of(given: str | None, filename: str | None, content_type: str | None) -> str:
    if given:
        return given
    suffix = filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if suffix in TEXT_FORMATS or suffix in BINARY_FORMATS:
        return suffix
    by_type = {v: k for k, v in {**BINARY_FORMATS, **TEXT_FORMATS}.items()}
    return by_type.get((content_type or "").split(";")[0].strip(), "binary")


def _json_field(form: dict[str, Any], name: str) -> Any:
    raw = form.get(name)
    if raw in (None, ""):
        return None
    try:
        return json.loads(str(raw))
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        raise RequestValidationError([{"loc": ("body", name), "msg": "must be JSON",
                                       "type": "json_invalid"}]) from None


async def read_write(request: Request, model: type[DocumentCreate] | type[DocumentUpdate]
                     ) -> tuple[DocumentCreate | DocumentUpdate, Content, str]:
    """A JSON or multipart write: its fields, its content and a hash of the request
    (for Idempotency-Key)."""
    limit = limit_of(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await read_body(request, limit + ENVELOPE_BYTES)
        fields = parse_json(model, body)
        content = Content.of_text(fields.content, fields.format or "markdown")
        if len(content.data) > limit:
            raise too_large(limit)
        request_hash = hashlib.sha256(request.url.path.encode())
        request_hash.update(body)
        return fields, content, request_hash.hexdigest()
    if kind != "multipart/form-data":
        raise Problem(415, "Send JSON (application/json) or a file (multipart/form-data).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise too_large(limit)
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError([{"loc": ("body", "file"), "msg": "a file is required",
                                           "type": "missing"}])
        if upload.size is not None and upload.size > limit:
            raise too_large(limit)
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise too_large(limit)
        filename = safe_filename(upload.filename)
        values = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
        fmt = format_of(values.get("format"), filename, upload.content_type)
        plain = ("title", "source", "author", "message") + (
            ("space",) if model is DocumentCreate else ())  # a new version keeps its space
        raw: dict[str, Any] = {k: values[k] for k in plain if k in values}
        raw.update(format=fmt, content="")
        for name in ("metadata", "provenance", "relations"):
            if (parsed := _json_field(values, name)) is not None:
                raw[name] = parsed
        if "tags" in values:
            raw["tags"] = [t.strip() for t in values["tags"].split(",") if t.strip()]
    fields = parse_model(model, raw)
    content = Content.of_upload(data, fmt, filename)
    digest = hashlib.sha256(json.dumps([request.url.path, raw, content.hash],
                                       sort_keys=True).encode()).hexdigest()
    return fields, content, digest


def idempotency_of(key: str | None, digest: str) -> Idempotency | None:
    return Idempotency(key, digest) if key else None


def _stored(response: Response, stored: StoredDocument) -> StoredDocument:
    response.status_code = 201 if stored.created else 200
    response.headers["ETag"] = f'"{stored.version}"'
    response.headers["Location"] = f"/documents/{stored.document_id}"
    return stored


@router.post("/documents", status_code=201, response_model=StoredDocument,
             openapi_extra=write_body(DocumentCreate),
             summary="Store a document (JSON text or a file)")
async def create_document(
    request: Request, response: Response, principal: Writer, spaces: Spaces,
    idempotency_key: str | None = IdempotencyKeyHeader,
    dedupe: bool = Query(True, description="return an existing identical document"),
) -> StoredDocument:
    fields, content, digest = await read_write(request, DocumentCreate)
    assert isinstance(fields, DocumentCreate)
    store = store_of(request)
    await store.check_write(fields.space, spaces)
    await store.check_targets({r.target_id for r in fields.relations}, spaces)
    stored = await store.create(
        principal.subject, fields, content, dedupe=dedupe,
        idempotency=idempotency_of(idempotency_key, digest))
    return _stored(response, stored)


@router.post("/documents/bulk", summary="Ingest NDJSON documents; one result line per line",
             openapi_extra=request_body(**{"application/x-ndjson": inline_schema(DocumentCreate)}))
async def bulk_ingest(request: Request, principal: Writer, spaces: Spaces) -> Response:
    answers = await ingest_ndjson(store_of(request), principal.subject, spaces,
                                  request.stream(),
                                  limit_of(request) + ENVELOPE_BYTES, lambda e: STATUS[type(e)])
    return Response(answers, media_type="application/x-ndjson")


@router.get("/documents", response_model=DocumentPage, summary="List documents")
async def list_documents(
    request: Request, _: Reader, spaces: Spaces,
    source: StorableText | None = None, format: StorableText | None = None,
    tag: Annotated[list[StorableText] | None, Query()] = None,
    author: StorableText | None = None,
    created_after: UtcDateTime | None = None, created_before: UtcDateTime | None = None,
    deleted: Literal["exclude", "include", "only"] = "exclude", stale: Stale = None,
    sort: str = Query("-created_at", description="created_at, updated_at or title; - for desc"),
    limit: int = Query(50, ge=1, le=500), cursor: Cursor = None,
) -> DocumentPage:
    filters = filters_of(request, source, format, tag, author, created_after, created_before,
                         deleted)
    filters.spaces, filters.stale = spaces.visible(), stale
    return await store_of(request).list(filters, sort, limit, cursor)


def filters_of(request: Request, source: str | None, format: str | None,
               tags: list[str] | None, author: str | None, created_after: datetime | None,
               created_before: datetime | None,
               deleted: Literal["exclude", "include", "only"] = "exclude") -> Filters:
    """The common filters, plus `metadata.<key>=<value>` for metadata fields."""
    metadata: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("metadata."):
            key = name.removeprefix("metadata.")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", key):
                raise errors.BadInput(f"Bad metadata filter {name!r}: keys are letters, digits, "
                                      "'_' and '-'.", field=name)
            try:
                metadata[key] = storable(value)
            except ValueError as exc:
                raise errors.BadInput(f"Bad metadata filter {name!r}: it {exc}.",
                                      field=name) from None
    return Filters(source=source, format=format, tags=tags or [], author=author,
                   created_after=created_after, created_before=created_before,
                   metadata=metadata, deleted=deleted)


@router.get("/documents/{document_id}", response_model=DocumentOut,
            summary="A document: text content (or content_url) and metadata")
async def get_document(request: Request, response: Response, document_id: DocumentId,
                       reader: Reader, spaces: Spaces,
                       version: int | None = Query(None, ge=1, le=INT4_MAX),
                       include_deleted: bool = False) -> DocumentOut:
    out, _ver = await store_of(request).get(document_id, reader, spaces, version,
                                            include_deleted)
    response.headers["ETag"] = f'"{out.version}"'
    return out


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@router.get("/documents/{document_id}/download",
            summary="The bytes, with Content-Type, Content-Disposition and ETag",
            response_class=Response)
async def download(request: Request, document_id: DocumentId, reader: Reader, spaces: Spaces,
                   version: int | None = Query(None, ge=1, le=INT4_MAX)) -> Response:
    store = store_of(request)
    out, ver = await store.get(document_id, reader, spaces, version)
    etag = f'"{ver.content_hash}"'
    extension = out.format if out.format in TEXT_FORMATS or out.format in BINARY_FORMATS \
        else "bin"
    headers = {"ETag": etag, "Cache-Control": "private, no-cache",
               "Content-Disposition": _disposition(ver.filename or
                                                   f"{document_id}-v{ver.version}.{extension}")}
    matches = [t.strip().removeprefix("W/") for t in
               request.headers.get("if-none-match", "").split(",")]
    if etag in matches or "*" in matches:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(ver.size)
        return Response(headers=headers, media_type=ver.media_type)
    return Response(await store.read_bytes(ver), headers=headers, media_type=ver.media_type)


# HEAD answers like GET without a body; one OpenAPI operation for both is enough
router.add_api_route("/documents/{document_id}/download", download, methods=["HEAD"],
                     response_class=Response, include_in_schema=False)


@router.put("/documents/{document_id}", response_model=StoredDocument,
            openapi_extra=write_body(DocumentUpdate), summary="A new version (JSON text or a file)")
async def update_document(request: Request, response: Response, document_id: DocumentId,
                          principal: Writer, spaces: Spaces, if_match: IfMatch = None,
                          idempotency_key: str | None = IdempotencyKeyHeader) -> StoredDocument:
    expected = expected_version(if_match)
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    fields, content, digest = await read_write(request, DocumentUpdate)
    await store.check_targets({r.target_id for r in fields.relations}, spaces)
    stored = await store.update(
        principal.subject, document_id, DocumentFields.model_validate(
            fields.model_dump(include=set(DocumentFields.model_fields))),
        content, expected=expected, idempotency=idempotency_of(idempotency_key, digest))
    _stored(response, stored)
    response.status_code = 200
    return stored


@router.patch("/documents/{document_id}", response_model=DocumentSummary,
              summary="Merge metadata, replace tags, change source or author")
async def patch_document(request: Request, document_id: DocumentId, change: DocumentPatch,
                         _: Writer, spaces: Spaces, if_match: IfMatch = None
                         ) -> DocumentSummary:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    return await store.patch(document_id, change, expected_version(if_match))


@router.delete("/documents/{document_id}", status_code=204, response_class=Response,
               summary="Soft delete (restorable); ?hard=true erases it (docs:admin)")
async def delete_document(request: Request, document_id: DocumentId, principal: Writer,
                          spaces: Spaces, hard: bool = False) -> Response:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    if hard:
        if not principal.allows(ADMIN):
            raise Problem(403, "A hard delete needs the scope docs:admin.")
        await store.hard_delete(document_id)
    else:
        await store.soft_delete(document_id)
    return Response(status_code=204)


@router.post("/documents/{document_id}/restore", response_model=DocumentSummary,
             summary="Undo a soft delete")
async def restore_document(request: Request, document_id: DocumentId, _: Writer,
                           spaces: Spaces) -> DocumentSummary:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    return await store.restore(document_id)


@router.get("/documents/{document_id}/versions", response_model=VersionList,
            summary="Every version, newest first")
async def list_versions(request: Request, document_id: DocumentId, _: Reader,
                        spaces: Spaces) -> VersionList:
    return await store_of(request).versions(document_id, spaces)


@router.get("/documents/{document_id}/versions/{version}", response_model=VersionDetail,
            summary="One version with its content (or content_url)")
async def get_version(request: Request, document_id: DocumentId, version: VersionNumber,
                      reader: Reader, spaces: Spaces) -> VersionDetail:
    return await store_of(request).version(document_id, version, reader, spaces)


@router.get("/documents/{document_id}/diff", response_model=DiffOut,
            summary="Unified diff between two text versions")
async def diff_versions(request: Request, document_id: DocumentId, _: Reader, spaces: Spaces,
                        from_version: int = Query(..., alias="from", ge=1, le=INT4_MAX),
                        to_version: int = Query(..., alias="to", ge=1, le=INT4_MAX)) -> DiffOut:
    return await store_of(request).diff(document_id, from_version, to_version, spaces)


@router.post("/documents/{document_id}/rollback", response_model=StoredDocument,
             summary="A new version equal to an old one")
async def rollback(request: Request, response: Response, document_id: DocumentId,
                   body: RollbackRequest, principal: Writer, spaces: Spaces,
                   if_match: IfMatch = None) -> StoredDocument:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    stored = await store.rollback(principal.subject, document_id, body.version,
                                              body.message, expected=expected_version(if_match))
    _stored(response, stored)
    response.status_code = 200
    return stored


@router.post("/documents/{document_id}/stale", response_model=DocumentSummary,
             summary="Mark the current version stale (the analysis service; cleared by "
                     "the next version)")
async def mark_stale(request: Request, document_id: DocumentId, mark: StaleMark,
                     writer: Writer, spaces: Spaces) -> DocumentSummary:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    # only the analysis service, as itself, says a document's sources changed
    if not (writer.is_service and writer.subject == "service:analysis") \
            and not writer.allows(ADMIN):
        raise Problem(403, f"Only the analysis service (or {ADMIN}) marks documents stale.")
    return await store.mark_stale(document_id, mark)


@router.get("/documents/{document_id}/provenance", response_model=ProvenanceOut,
            summary="The provenance record of a version, and the document's relations")
async def provenance(request: Request, document_id: DocumentId, reader: Reader, spaces: Spaces,
                     version: int | None = Query(None, ge=1, le=INT4_MAX)) -> ProvenanceOut:
    return await store_of(request).provenance(document_id, reader, spaces, version)


@router.get("/documents/{document_id}/relations", response_model=RelationList,
            summary="Relations in both directions")
async def relations(request: Request, document_id: DocumentId, _: Reader, spaces: Spaces,
                    type: RelationType | None = None) -> RelationList:
    return await store_of(request).relations(document_id, spaces, type)


@router.post("/documents/{document_id}/relations", response_model=RelationList,
             status_code=201, summary="Relate this document to another")
async def add_relation(request: Request, document_id: DocumentId, relation: RelationIn,
                       _: Writer, spaces: Spaces) -> RelationList:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    await store.check_targets({relation.target_id}, spaces)
    return await store.add_relation(document_id, relation, spaces)


@router.delete("/documents/{document_id}/relations/{type}/{target_id}", status_code=204,
               response_class=Response, summary="Remove a relation")
async def remove_relation(request: Request, document_id: DocumentId, type: RelationType,
                          target_id: DocumentId, _: Writer, spaces: Spaces) -> Response:
    store = store_of(request)
    await store.check_document(document_id, spaces, write=True)
    await store.remove_relation(document_id, type, target_id)
    return Response(status_code=204)


@router.get("/documents/{document_id}/lineage", response_model=Lineage,
            summary="Walk derived_from/supersedes edges up (sources) or down (derivatives)")
async def lineage(request: Request, document_id: DocumentId, _: Reader, spaces: Spaces,
                  direction: Literal["up", "down"] = "up",
                  depth: int = Query(5, ge=1, le=20)) -> Lineage:
    return await store_of(request).lineage(document_id, spaces, direction, depth)


@router.get("/search", response_model=SearchPage,
            summary="Ranked full-text search with snippets; filters apply to the matches")
async def search(
    request: Request, _: Reader, spaces: Spaces,
    q: str = Query(..., min_length=1, max_length=500),
    source: StorableText | None = None, format: StorableText | None = None,
    tag: Annotated[list[StorableText] | None, Query()] = None,
    author: StorableText | None = None,
    created_after: UtcDateTime | None = None, created_before: UtcDateTime | None = None,
    stale: Stale = None, limit: int = Query(20, ge=1, le=100), cursor: Cursor = None,
) -> SearchPage:
    filters = filters_of(request, source, format, tag, author, created_after, created_before)
    filters.spaces, filters.stale = spaces.visible(), stale
    return await store_of(request).search(q, filters, limit, cursor)


router.include_router(spaces_router)
