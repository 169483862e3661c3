"""The doc-store's reads: documents, versions, diffs, listing, search, relations and
provenance, and the statements and records the writes share with them."""

from __future__ import annotations

import dataclasses
import difflib
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from llmdocs.core.audit import touched
from llmdocs.core.auth import Principal
from llmdocs.core.resources import Resources
from llmdocs.core.spaces import SpaceView
from llmdocs.core.sqlite import in_thread
from llmdocs.provenance import as_seen_by
from llmdocs.services.docstore.blobs import BlobStore
from llmdocs.services.docstore.cursors import encode_cursor, list_position, search_offset
from llmdocs.services.docstore.errors import (
    BadInput,
    NotFoundError,
    Rejected,
)
from llmdocs.services.docstore.models import (
    DOCUMENTS,
    TAGS,
    VERSIONS,
    Document,
    Relation,
    Tag,
)
from llmdocs.services.docstore.schemas import (
    DiffOut,
    DocumentOut,
    DocumentPage,
    DocumentSummary,
    Lineage,
    LineageNode,
    ProvenanceOut,
    RelationList,
    RelationOut,
    SearchHit,
    SearchPage,
    VersionDetail,
    VersionList,
    VersionOut,
)
from llmdocs.services.docstore.search import TAG_LIST, backend_for, tag_list, words_of
from llmdocs.services.docstore.spaces import missing

TEXT_FORMATS: dict[str, str] = {
    "markdown": "text/markdown", "md": "text/markdown", "txt": "text/plain",
    "text": "text/plain", "json": "application/json", "csv": "text/csv",
    "html": "text/html", "yaml": "application/yaml", "xml": "application/xml",
    "rst": "text/x-rst", "openapi": "application/json",
}
BINARY_FORMATS: dict[str, str] = {
    "pdf": "application/pdf", "zip": "application/zip", "png": "image/png",
    "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
    "svg": "image/svg+xml", "docx": ("application/vnd.openxmlformats-officedocument."
                                     "wordprocessingml.document"),
    "binary": "application/octet-stream",
}
# filters and sorts use the Core columns: building and cache-keying a statement of them
# costs far less Python than of the ORM attributes
SORTS = {"created_at": DOCUMENTS.c.created_at, "updated_at": DOCUMENTS.c.updated_at,
         "title": DOCUMENTS.c.title}
# the filters compared with a column, by parameter name (see `Filters.conditions`)
COMPARED: dict[str, tuple[sa.Column[Any], Callable[[Any, Any], Any]]] = {
    "source": (DOCUMENTS.c.source, operator.eq), "format": (DOCUMENTS.c.format, operator.eq),
    "author": (DOCUMENTS.c.author, operator.eq),
    "created_after": (DOCUMENTS.c.created_at, operator.ge),
    "created_before": (DOCUMENTS.c.created_at, operator.lt)}
LIST_STATEMENTS = 256  # list statements kept, one per shape of request
LINEAGE_TYPES = ("derived_from", "supersedes")
ADMIN = "docs:admin"  # sees any document's provenance whole; erases documents
S = TypeVar("S", bound=DocumentSummary)
# writes run on a Core connection (no ORM unit of work); reads share helpers with them
Executor = AsyncSession | AsyncConnection
VersionRow = sa.Row[*tuple[Any, ...]]  # a docstore_versions row, by column name


def media_type_for(format: str, text: bool) -> str:
    if text:
        return TEXT_FORMATS.get(format, "text/plain") + "; charset=utf-8"
    return BINARY_FORMATS.get(format, "application/octet-stream")


def is_text_format(format: str) -> bool:
    return format in TEXT_FORMATS


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Filters:
    source: str | None = None
    format: str | None = None
    tags: list[str] = field(default_factory=list)
    author: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    deleted: Literal["exclude", "include", "only"] = "exclude"
    spaces: frozenset[str] | None = None  # the caller's (SpaceView.visible); None: all
    stale: bool | None = None  # only stale documents, only fresh ones; None: both

    def params(self) -> dict[str, Any]:
        """The filters' values, by the name of the parameter `conditions` binds each to."""
        values: dict[str, Any] = {name: value for name, value in (
            ("source", self.source), ("format", self.format), ("author", self.author),
            ("created_after", self.created_after), ("created_before", self.created_before))
            if value is not None}
        values.update((f"tag_{i}", tag) for i, tag in enumerate(self.tags))
        values.update((f"meta_{i}", value) for i, value in enumerate(self.metadata.values()))
        if self.spaces is not None:
            values["spaces"] = sorted(self.spaces)
        return values

    def shape(self) -> tuple[Any, ...]:
        """What the statement of `conditions` depends on besides the values: requests
        of one shape can share one statement, given their own `params`."""
        return self.deleted, tuple(self.params()), tuple(self.metadata), self.stale

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The filters on named parameters holding this request's values (`params`)."""
        docs = DOCUMENTS.c
        conds: list[sa.ColumnElement[bool]] = []
        if self.deleted == "exclude":
            conds.append(docs.deleted_at.is_(None))
        elif self.deleted == "only":
            conds.append(docs.deleted_at.is_not(None))
        params = self.params()
        for name, (column, compare) in COMPARED.items():
            if name in params:
                conds.append(compare(column, sa.bindparam(name, params[name], column.type)))
        for i, _tag in enumerate(self.tags):
            name = f"tag_{i}"
            conds.append(docs.id.in_(sa.select(TAGS.c.document_id).where(
                TAGS.c.tag == sa.bindparam(name, params[name], TAGS.c.tag.type))))
        for i, key in enumerate(self.metadata):
            name = f"meta_{i}"
            conds.append(docs.metadata[key].as_string()
                         == sa.bindparam(name, params[name], sa.String()))
        if self.stale is not None:
            conds.append(docs.stale_reason.is_not(None) if self.stale
                         else docs.stale_reason.is_(None))
        if self.spaces is not None:  # one statement for any number of spaces
            conds.append(docs.space.in_(sa.bindparam("spaces", params["spaces"],
                                                     expanding=True)))
        return conds


def summary_fields(doc: Mapping[Any, Any], ver: Mapping[Any, Any], tags: list[str]
             ) -> dict[str, Any]:
    """A summary from a document's and its version's columns (by column name; one row
    of `SUMMARY` serves as both)."""
    deleted_at = doc.get("deleted_at")
    return {
        "document_id": doc["id"], "space": doc["space"], "version": doc["version"],
        "content_hash": ver["content_hash"], "title": doc["title"], "format": doc["format"],
        "source": doc["source"], "author": doc["author"],
        "kind": "text" if ver["blob_key"] is None else "binary",
        "media_type": ver["media_type"], "size": ver["size"], "filename": ver["filename"],
        "metadata": doc["metadata"], "tags": tags, "created_at": aware(doc["created_at"]),
        "updated_at": aware(doc["updated_at"]),
        "deleted_at": aware(deleted_at) if deleted_at else None,
        "stale": doc.get("stale_reason") is not None, "stale_reason": doc.get("stale_reason"),
        "stale_finding": doc.get("stale_finding"),
    }


def _columns(doc: Document) -> dict[str, Any]:
    """A document's values by column name (`Document.meta` is the column `metadata`)."""
    return {attr.columns[0].name: getattr(doc, attr.key)
            for attr in doc.__mapper__.column_attrs}


# A document's summary in one statement: the document, its current version (without the
# content) and its tags aggregated; callers add their filter, order and limit.
SUMMARY = (
    sa.select(DOCUMENTS.c.id, DOCUMENTS.c.space, DOCUMENTS.c.version, DOCUMENTS.c.title,
              DOCUMENTS.c.format, DOCUMENTS.c.source, DOCUMENTS.c.author, DOCUMENTS.c.metadata,
              DOCUMENTS.c.created_at, DOCUMENTS.c.updated_at, DOCUMENTS.c.deleted_at,
              DOCUMENTS.c.stale_reason, DOCUMENTS.c.stale_finding, VERSIONS.c.content_hash,
              VERSIONS.c.blob_key, VERSIONS.c.media_type, VERSIONS.c.size, VERSIONS.c.filename,
              sa.select(TAG_LIST).where(TAGS.c.document_id == DOCUMENTS.c.id)
              .scalar_subquery().label("tags"))
    .join(VERSIONS, sa.and_(VERSIONS.c.document_id == DOCUMENTS.c.id, VERSIONS.c.is_current))
)


# the oldest live document whose current version has this hash, from this source, in
# this space (another space's twin is none of the writer's business)
DUPLICATE = (SUMMARY.where(VERSIONS.c.content_hash == sa.bindparam("hash"),
                           DOCUMENTS.c.source == sa.bindparam("source"),
                           DOCUMENTS.c.space == sa.bindparam("space"),
                           DOCUMENTS.c.deleted_at.is_(None))
             .order_by(DOCUMENTS.c.created_at).limit(1))


def rows_as(model: type[S], rows: Sequence[sa.Row[*tuple[Any, ...]]],
             **extra: Any) -> list[S]:
    """Rows of `SUMMARY` as summaries (or answers to a write, with `extra`)."""
    return [model(**summary_fields(m, m, tag_list(m["tags"])), **extra)
            for m in (row._mapping for row in rows)]


def _version_out(ver: VersionRow) -> dict[str, Any]:
    return {
        "document_id": ver.document_id, "version": ver.version, "is_current": ver.is_current,
        "content_hash": ver.content_hash, "title": ver.title,
        "kind": "text" if ver.blob_key is None else "binary", "media_type": ver.media_type,
        "size": ver.size, "filename": ver.filename, "author": ver.author,
        "message": ver.message, "created_at": aware(ver.created_at),
    }


def content_url(document_id: str, version: int | None = None) -> str:
    suffix = f"?version={version}" if version is not None else ""
    return f"/documents/{document_id}/download{suffix}"


def seen_by(other: Any, view: SpaceView) -> list[sa.ColumnElement[bool]]:
    """The condition that the document the column `other` names is in the caller's
    spaces (none for a caller who sees every space)."""
    visible = view.visible()
    if visible is None:
        return []
    return [other.in_(sa.select(DOCUMENTS.c.id).where(DOCUMENTS.c.space.in_(visible)))]


class Queries:
    """The store's reads; the writes (`ingest.py`, `bulk.py`) build on them."""

    def __init__(self, resources: Resources, blobs: BlobStore) -> None:
        self.db = resources.database
        self.events = resources.events
        self.blobs = blobs
        self.search_backend = backend_for(self.db.dialect, self.db.seals(VERSIONS.c.content))
        self._lists: LRUCache[tuple[Any, ...], sa.Select[Any]] = LRUCache(LIST_STATEMENTS)

    # -- reading ---------------------------------------------------------------------

    @staticmethod
    async def _document(session: AsyncSession, doc_id: str, include_deleted: bool = False,
                        view: SpaceView | None = None) -> Document:
        """The document, when there and (given the caller's `view`) in their spaces."""
        doc = await session.get(Document, doc_id)
        touched(None if doc is None else doc.space)
        if doc is None or (doc.deleted_at is not None and not include_deleted) or (
                view is not None and not view.may_read(doc.space)):
            raise missing(doc_id)
        return doc

    @staticmethod
    async def _version(session: Executor, doc_id: str, version: int) -> VersionRow:
        ver = (await session.execute(sa.select(VERSIONS).where(
            VERSIONS.c.document_id == doc_id, VERSIONS.c.version == version))).first()
        if ver is None:
            raise NotFoundError(f"Document {doc_id!r} has no version {version}.")
        return ver

    @staticmethod
    async def _tags(session: Executor, ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if ids:
            rows = await session.execute(sa.select(Tag.document_id, Tag.tag)
                                         .where(Tag.document_id.in_(set(ids)))
                                         .order_by(Tag.tag))
            for doc_id, tag in rows:
                found.setdefault(doc_id, []).append(tag)
        return found

    @staticmethod
    async def _summaries(session: AsyncSession, ids: Sequence[str]) -> list[DocumentSummary]:
        rows = (await session.execute(SUMMARY.where(DOCUMENTS.c.id.in_(ids)))).all()
        by_id = {s.document_id: s for s in rows_as(DocumentSummary, rows)}
        return [by_id[i] for i in ids if i in by_id]

    async def get(self, doc_id: str, reader: Principal, view: SpaceView,
                  version: int | None = None, include_deleted: bool = False
                  ) -> tuple[DocumentOut, VersionRow]:
        async with self.db.session() as session:
            doc = await self._document(session, doc_id, include_deleted, view)
            ver = await self._version(session, doc_id, version or doc.version)
            tags = await self._tags(session, [doc_id])
        out = DocumentOut(**summary_fields(_columns(doc), ver._mapping, tags.get(doc_id, [])),
                          content=ver.content,
                          content_url=content_url(doc_id, version),
                          provenance=as_seen_by(ver.provenance, reader, ADMIN))
        return out, ver

    async def read_bytes(self, ver: VersionRow) -> bytes:
        if ver.blob_key is None:
            return (ver.content or "").encode("utf-8")
        return await self.blobs.get(ver.blob_key)

    async def versions(self, doc_id: str, view: SpaceView) -> VersionList:
        async with self.db.session() as session:
            await self._document(session, doc_id, view=view)
            rows = (await session.execute(
                sa.select(*(c for c in VERSIONS.c if c.name != "content"))
                .where(VERSIONS.c.document_id == doc_id)
                .order_by(VERSIONS.c.version.desc()))).all()
        return VersionList(document_id=doc_id,
                           items=[VersionOut(**_version_out(v)) for v in rows])

    async def version(self, doc_id: str, version: int, reader: Principal,
                      view: SpaceView) -> VersionDetail:
        async with self.db.session() as session:
            await self._document(session, doc_id, view=view)
            ver = await self._version(session, doc_id, version)
        return VersionDetail(**_version_out(ver), content=ver.content,
                             content_url=content_url(doc_id, version),
                             provenance=as_seen_by(ver.provenance, reader, ADMIN))

    async def diff(self, doc_id: str, old: int, new: int, view: SpaceView) -> DiffOut:
        async with self.db.session() as session:
            await self._document(session, doc_id, view=view)
            a = await self._version(session, doc_id, old)
            b = await self._version(session, doc_id, new)
        if a.content is None or b.content is None:
            raise Rejected("Binary versions cannot be diffed; compare content_hash.")
        lines = difflib.unified_diff(a.content.splitlines(keepends=True),
                                     b.content.splitlines(keepends=True),
                                     fromfile=f"v{old}", tofile=f"v{new}")
        return DiffOut(document_id=doc_id, from_version=old, to_version=new,
                       from_hash=a.content_hash, to_hash=b.content_hash,
                       identical=a.content_hash == b.content_hash, diff="".join(lines))

    @staticmethod
    def _list_statement(filters: Filters, sort: str, after: bool) -> sa.Select[Any]:
        """A list's statement on named parameters: built (and cache-keyed by SQLAlchemy)
        once per shape of request, then run with each request's values."""
        column = SORTS[sort.lstrip("-")]
        conds = filters.conditions()
        if after:
            key = sa.tuple_(column, DOCUMENTS.c.id)
            bound = sa.tuple_(sa.bindparam("after_value", type_=column.type),
                              sa.bindparam("after_id", type_=DOCUMENTS.c.id.type))
            conds.append(key < bound if sort.startswith("-") else key > bound)
        order = ([column.desc(), DOCUMENTS.c.id.desc()] if sort.startswith("-")
                 else [column, DOCUMENTS.c.id])
        return (SUMMARY.where(*conds).order_by(*order)
                .limit(sa.bindparam("limit", type_=sa.Integer)))

    async def list(self, filters: Filters, sort: str, limit: int,
                   cursor: str | None) -> DocumentPage:
        column = SORTS.get(sort.lstrip("-"))
        if column is None:
            raise BadInput(f"Unknown sort {sort!r}; use one of {', '.join(SORTS)} "
                           "(prefix - for descending).", field="sort")
        params = {**filters.params(), "limit": limit + 1}
        if cursor is not None:
            value, last_id = list_position(cursor, by_title=column is DOCUMENTS.c.title)
            params |= {"after_value": value, "after_id": last_id}
        shape = (filters.shape(), sort, cursor is not None)
        stmt = self._lists.get(shape)
        if stmt is None:
            stmt = self._lists[shape] = self._list_statement(filters, sort, cursor is not None)
        async with self.db.reader() as conn:  # one statement: summaries with their tags
            rows = (await conn.execute(stmt, params)).all()
        items = rows_as(DocumentSummary, rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            value = last.title if column is DOCUMENTS.c.title else getattr(
                last, sort.lstrip("-")).astimezone(UTC).replace(tzinfo=None).isoformat(" ")
            next_cursor = encode_cursor([value, last.document_id])
        return DocumentPage(items=items, next_cursor=next_cursor)

    async def search(self, query: str, filters: Filters, limit: int,
                     cursor: str | None) -> SearchPage:
        words = words_of(query)
        if not words:
            raise BadInput("The query has no words to search for.", field="q")
        offset = search_offset(cursor) if cursor is not None else 0
        # the backend leaves out soft-deleted documents itself, most cheaply
        wanted = dataclasses.replace(filters, deleted="include").conditions()
        # one statement, no transaction around it; SQLite runs it off the loop, as a
        # common word can match a large share of the documents
        with in_thread():
            async with self.db.reader() as conn:
                ranked = await self.search_backend.page(conn, words, wanted, limit + 1,
                                                        offset)
        hits = [SearchHit(document_id=hit.document_id, version=hit.version, title=hit.title,
                          format=hit.format, source=hit.source, author=hit.author,
                          tags=hit.tags, score=hit.score, snippet=hit.snippet,
                          created_at=aware(hit.created_at), updated_at=aware(hit.updated_at))
                  for hit in ranked[:limit]]
        next_cursor = encode_cursor([offset + limit]) if len(ranked) > limit else None
        return SearchPage(query=query, items=hits, next_cursor=next_cursor)

    # -- provenance and relations ----------------------------------------------------

    async def relations(self, doc_id: str, view: SpaceView,
                        type: str | None = None) -> RelationList:
        """Both directions, but for documents of spaces the caller does not see."""
        async with self.db.session() as session:
            await self._document(session, doc_id, view=view)
            typed = [Relation.type == type] if type else []
            out = (await session.scalars(sa.select(Relation).where(
                Relation.source_id == doc_id, *typed, *seen_by(Relation.target_id, view))
                .order_by(Relation.created_at))).all()
            inc = (await session.scalars(sa.select(Relation).where(
                Relation.target_id == doc_id, *typed, *seen_by(Relation.source_id, view))
                .order_by(Relation.created_at))).all()

        def shape(rel: Relation) -> RelationOut:
            return RelationOut.model_validate(
                {"source_id": rel.source_id, "type": rel.type, "target_id": rel.target_id,
                 "created_at": aware(rel.created_at)})

        return RelationList(document_id=doc_id, outgoing=[shape(r) for r in out],
                            incoming=[shape(r) for r in inc])

    async def provenance(self, doc_id: str, reader: Principal, view: SpaceView,
                         version: int | None = None) -> ProvenanceOut:
        async with self.db.session() as session:
            doc = await self._document(session, doc_id, view=view)
            ver = await self._version(session, doc_id, version or doc.version)
        return ProvenanceOut(document_id=doc_id, version=ver.version,
                             content_hash=ver.content_hash,
                             provenance=as_seen_by(ver.provenance, reader, ADMIN),
                             relations=await self.relations(doc_id, view))

    async def lineage(self, doc_id: str, view: SpaceView, direction: Literal["up", "down"],
                      depth: int) -> Lineage:
        """Walk derived_from / supersedes edges breadth-first: `up` to what a document
        came from, `down` to what came from it. Each document appears once; the walk
        stops at documents of spaces the caller does not see (and never shows them)."""
        near, far = ((Relation.source_id, Relation.target_id) if direction == "up"
                     else (Relation.target_id, Relation.source_id))
        nodes: list[LineageNode] = []
        seen = {doc_id}
        frontier = [doc_id]
        async with self.db.session() as session:
            await self._document(session, doc_id, view=view)
            for level in range(1, depth + 1):
                if not frontier:
                    break
                rows = (await session.execute(
                    sa.select(near, far, Relation.type)
                    .where(near.in_(frontier), Relation.type.in_(LINEAGE_TYPES),
                           *seen_by(far, view))
                    .order_by(Relation.created_at))).all()
                frontier = []
                for parent, found, via in rows:
                    if found not in seen:
                        seen.add(found)
                        frontier.append(found)
                        nodes.append(LineageNode.model_validate(
                            {"document_id": found, "depth": level, "via": via,
                             "parent_id": parent}))
        return Lineage(document_id=doc_id, nodes=nodes)
