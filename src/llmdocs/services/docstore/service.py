"""The doc-store's domain logic: documents, immutable versions, blobs, search, relations.

Writes follow one rule: the blob (if any) is written first under a fresh key, then the
rows in one transaction; if the transaction fails the blob is removed again. So no
version row exists without its blob and no failed write leaves a blob behind. Every
write transaction starts with a write statement, so SQLite takes its write lock at once
(no stale-snapshot upgrade) and PostgreSQL locks the document row before reading it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import operator
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypeVar, cast

import sqlalchemy as sa
import structlog
from cachetools import LRUCache
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from llmdocs.core.auth import Principal
from llmdocs.core.db import (
    RowFields,
    insert_json_rows,
    json_param,
    json_rows,
    json_values,
    utcnow,
)
from llmdocs.core.events import Event, make_event
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.core.resources import Resources
from llmdocs.core.sqlite import in_thread
from llmdocs.provenance import as_seen_by
from llmdocs.services.docstore.blobs import BlobStore, is_key
from llmdocs.services.docstore.cursors import encode_cursor, list_position, search_offset
from llmdocs.services.docstore.errors import (
    BadInput,
    BlobsUnavailable,
    DocStoreError,
    NotFoundError,
    Rejected,
    StaleVersion,
    WrongState,
)
from llmdocs.services.docstore.models import (
    DOCUMENTS,
    IDEMPOTENCY,
    RELATIONS,
    TAGS,
    VERSIONS,
    Document,
    IdempotencyKey,
    Relation,
    Tag,
    Version,
)
from llmdocs.services.docstore.schemas import (
    DiffOut,
    DocumentCreate,
    DocumentFields,
    DocumentOut,
    DocumentPage,
    DocumentPatch,
    DocumentSummary,
    Lineage,
    LineageNode,
    ProvenanceOut,
    RelationIn,
    RelationList,
    RelationOut,
    SearchHit,
    SearchPage,
    StoredDocument,
    VersionDetail,
    VersionList,
    VersionOut,
)
from llmdocs.services.docstore.search import TAG_LIST, backend_for, tag_list, words_of

log = structlog.get_logger(__name__)
T = TypeVar("T")

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
BULK_ANALYZE_MIN = 1000  # fewer new documents than this never trigger an ANALYZE
NUL = "\\u0000"  # how a NUL character appears in a JSON row
STALE_SHARE = 0.2  # new rows, as a share of the table, that make PostgreSQL's statistics stale


# Bulk rows: target column -> the key of a JSON row holding its value, or a constant
# (`:now` is bound once per batch, so SQLAlchemy still formats the time per dialect).
NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
BULK_DOCUMENT: RowFields = {
    "id": "id", "title": "title", "format": "format", "source": "source",
    "author": "author", "metadata": "metadata", "version": sa.literal(1),
    "created_at": NOW, "updated_at": NOW}
BULK_VERSION: RowFields = {
    "document_id": "id", "title": "title", "content": "content",
    "media_type": "media_type", "size": "size", "content_hash": "content_hash",
    "provenance": "provenance", "author": "author", "message": "message",
    "version": sa.literal(1), "is_current": sa.true(), "created_at": NOW}
RELATION_ROWS: RowFields = {"source_id": "source_id", "type": "type",
                            "target_id": "target_id", "created_at": NOW}
INSERT_DOCUMENT = sa.insert(DOCUMENTS)
INSERT_VERSION = sa.insert(VERSIONS)
INSERT_IDEMPOTENCY = sa.insert(IDEMPOTENCY)
S = TypeVar("S", bound=DocumentSummary)
# writes run on a Core connection (no ORM unit of work); reads share helpers with them
Executor = AsyncSession | AsyncConnection
VersionRow = sa.Row[*tuple[Any, ...]]  # a docstore_versions row, by column name


def insert_relations(dialect: str) -> sa.Insert:
    """The relations bound as one JSON array `rows` whose target exists: the insert is
    the existence check (fewer rows inserted than given means a target is missing, or
    the relation was there already: a new version naming its relations again)."""
    columns, rows = json_rows(dialect, RELATIONS, RELATION_ROWS)
    target = rows.selected_columns[columns.index("target_id")]
    insert = postgresql.insert(RELATIONS) if dialect == "postgresql" else sqlite.insert(RELATIONS)
    return insert.from_select(
        columns, rows.where(target.in_(sa.select(DOCUMENTS.c.id)))).on_conflict_do_nothing()


def media_type_for(format: str, text: bool) -> str:
    if text:
        return TEXT_FORMATS.get(format, "text/plain") + "; charset=utf-8"
    return BINARY_FORMATS.get(format, "application/octet-stream")


def is_text_format(format: str) -> bool:
    return format in TEXT_FORMATS


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Content:
    """A version's bytes: `text` is set for text formats (stored in the database)."""

    data: bytes
    text: str | None
    media_type: str
    filename: str | None = None
    # every version stores its hash: computed at once (a cached_property takes a lock
    # on each first access, which showed in bulk-import profiles)
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", sha256(self.data))

    @classmethod
    def of_text(cls, text: str, format: str, filename: str | None = None) -> Content:
        if format in BINARY_FORMATS:
            raise Rejected(f"Format {format!r} is binary: upload it as a file "
                                "(multipart/form-data).", field="format")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from JSON "\ud800"
            raise Rejected(f"The content is not valid Unicode (character {exc.start}).",
                                field="content") from None
        return cls(data, text, media_type_for(format, True), filename)

    @classmethod
    def of_upload(cls, data: bytes, format: str, filename: str | None) -> Content:
        """Text formats must be UTF-8 (they are searched and diffed); others are blobs."""
        if not is_text_format(format):
            return cls(data, None, media_type_for(format, False), filename)
        try:
            return cls.of_text(data.decode("utf-8"), format, filename)
        except UnicodeDecodeError as exc:
            raise Rejected(
                f"The file is not valid UTF-8 (byte {exc.start}); a '{format}' document "
                "must be UTF-8 text. Upload it with a binary format instead.",
                field="file") from None


class Prepared(NamedTuple):
    """A bulk line made ready to store: its id and its row as JSON (see `prepare`)."""

    item: DocumentCreate
    content: Content
    doc_id: str
    row: str
    event: Event  # its llmdocs.document.stored, published if it is stored


class Ingested(NamedTuple):
    """A bulk line's answer: all an import needs, without building a full summary."""

    document_id: str
    version: int
    content_hash: str
    created: bool


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


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

    def params(self) -> dict[str, Any]:
        """The filters' values, by the name of the parameter `conditions` binds each to."""
        values = {name: value for name, value in (
            ("source", self.source), ("format", self.format), ("author", self.author),
            ("created_after", self.created_after), ("created_before", self.created_before))
            if value is not None}
        values.update((f"tag_{i}", tag) for i, tag in enumerate(self.tags))
        values.update((f"meta_{i}", value) for i, value in enumerate(self.metadata.values()))
        return values

    def shape(self) -> tuple[Any, ...]:
        """What the statement of `conditions` depends on besides the values: requests
        of one shape can share one statement, given their own `params`."""
        return self.deleted, tuple(self.params()), tuple(self.metadata)

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
        return conds


def _summary(doc: Mapping[Any, Any], ver: Mapping[Any, Any], tags: list[str]
             ) -> dict[str, Any]:
    """A summary from a document's and its version's columns (by column name; one row
    of `SUMMARY` serves as both)."""
    deleted_at = doc.get("deleted_at")
    return {
        "document_id": doc["id"], "version": doc["version"],
        "content_hash": ver["content_hash"], "title": doc["title"], "format": doc["format"],
        "source": doc["source"], "author": doc["author"],
        "kind": "text" if ver["blob_key"] is None else "binary",
        "media_type": ver["media_type"], "size": ver["size"], "filename": ver["filename"],
        "metadata": doc["metadata"], "tags": tags, "created_at": aware(doc["created_at"]),
        "updated_at": aware(doc["updated_at"]),
        "deleted_at": aware(deleted_at) if deleted_at else None,
    }


def _columns(doc: Document) -> dict[str, Any]:
    """A document's values by column name (`Document.meta` is the column `metadata`)."""
    return {attr.columns[0].name: getattr(doc, attr.key)
            for attr in doc.__mapper__.column_attrs}


# A document's summary in one statement: the document, its current version (without the
# content) and its tags aggregated; callers add their filter, order and limit.
SUMMARY = (
    sa.select(DOCUMENTS.c.id, DOCUMENTS.c.version, DOCUMENTS.c.title, DOCUMENTS.c.format,
              DOCUMENTS.c.source, DOCUMENTS.c.author, DOCUMENTS.c.metadata,
              DOCUMENTS.c.created_at, DOCUMENTS.c.updated_at, DOCUMENTS.c.deleted_at,
              VERSIONS.c.content_hash, VERSIONS.c.blob_key, VERSIONS.c.media_type,
              VERSIONS.c.size, VERSIONS.c.filename,
              sa.select(TAG_LIST).where(TAGS.c.document_id == DOCUMENTS.c.id)
              .scalar_subquery().label("tags"))
    .join(VERSIONS, sa.and_(VERSIONS.c.document_id == DOCUMENTS.c.id, VERSIONS.c.is_current))
)


# the oldest live document whose current version has this hash, from this source
DUPLICATE = (SUMMARY.where(VERSIONS.c.content_hash == sa.bindparam("hash"),
                           DOCUMENTS.c.source == sa.bindparam("source"),
                           DOCUMENTS.c.deleted_at.is_(None))
             .order_by(DOCUMENTS.c.created_at).limit(1))


def _rows_as(model: type[S], rows: Sequence[sa.Row[*tuple[Any, ...]]],
             **extra: Any) -> list[S]:
    """Rows of `SUMMARY` as summaries (or answers to a write, with `extra`)."""
    return [model(**_summary(m, m, tag_list(m["tags"])), **extra)
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


class DocStore:
    def __init__(self, resources: Resources, blobs: BlobStore) -> None:
        self.db = resources.database
        self.events = resources.events
        self.blobs = blobs
        self.search_backend = backend_for(self.db.dialect)
        self._insert_relations = insert_relations(self.db.dialect)
        self._lists: LRUCache[tuple[Any, ...], sa.Select[Any]] = LRUCache(LIST_STATEMENTS)
        self._insert_tags = insert_json_rows(self.db.dialect, TAGS, {
            "document_id": "document_id", "tag": "tag"})
        self._unanalysed = 0  # documents this process bulk-inserted since its last ANALYZE
        self._analysed = 0  # documents in the table at that ANALYZE

    # -- writing ---------------------------------------------------------------------

    async def _write(self, content: Content | None,
                     work: Callable[[AsyncConnection, str | None], Awaitable[T]],
                     document_id: str,
                     announce: Callable[[T], Sequence[Event]] | None = None) -> T:
        """Blob first under a fresh key, then the rows (Core statements in one
        transaction) with the events `announce` makes of what `work` wrote (in the same
        transaction on the SQL event bus; see `EventBus.transaction`); undo the blob if
        the rows fail."""
        key = None
        if content is not None and content.text is None:
            key = f"{document_id}/{new_id()}"
            if not is_key(key):  # ids are the store's own: none has such characters
                raise NotFoundError(f"No document {document_id!r}.")
            try:
                await self.blobs.put(key, content.data)
            except Exception as exc:
                log.error("blob_write_failed", key=key, error=str(exc))
                raise BlobsUnavailable("The blob store could not save the file; "
                                       "nothing was stored. Try again later.") from None
        try:
            async with self.events.transaction(self.db) as (conn, outbox):
                written = await work(conn, key)
                if announce is not None:
                    outbox.extend(announce(written))
            return written
        except BaseException:
            if key is not None:
                await self._drop_blobs([key])
            raise

    async def _drop_blobs(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                await self.blobs.delete(key)
            except Exception as exc:  # the rows are what count; log the leftover
                log.error("blob_delete_failed", key=key, error=str(exc))

    @staticmethod
    def _events(type: str, changes: Sequence[tuple[str, int, str, str]]) -> list[Event]:
        """One event per (id, version, hash, source); the envelope (correlation id, trace
        context) is stamped once and copied, which matters for imports of thousands."""
        if not changes:
            return []
        correlation_id = correlation_id_var.get()
        template = make_event("docstore", type, {})
        return [template.model_copy(update={
                    "id": new_id(), "subject": doc_id,
                    "data": {"id": doc_id, "version": version, "content_hash": content_hash,
                             "source": source, "correlation_id": correlation_id}})
                for doc_id, version, content_hash, source in changes]

    def _announce(self, written: tuple[StoredDocument, str]) -> list[Event]:
        stored, type = written
        return self._events(type, [(stored.document_id, stored.version,
                                    stored.content_hash, stored.source)])

    async def _publish(self, type: str, doc_id: str, version: int, content_hash: str,
                       source: str) -> None:
        await self.events.publish(self._events(type, [(doc_id, version, content_hash,
                                                       source)])[0])

    @staticmethod
    def _version_values(doc_id: str, version: int, title: str, content: Content,
                        blob_key: str | None, fields: DocumentFields, author: str,
                        now: datetime) -> dict[str, Any]:
        """A new current version's row, inserted as is and answered from."""
        return {"document_id": doc_id, "version": version, "is_current": True,
                "title": title, "content": content.text, "blob_key": blob_key,
                "filename": content.filename, "media_type": content.media_type,
                "size": len(content.data), "content_hash": content.hash,
                "provenance": fields.provenance, "author": author,
                "message": fields.message, "created_at": now}

    async def _add_tags(self, session: Executor, rows: list[dict[str, str]]) -> None:
        """Tags of one or many documents in one statement, their rows bound as one JSON
        array (an executemany costs a pass per row, and SQLite runs it off the loop)."""
        if rows:
            await session.execute(self._insert_tags, {"rows": json_param(rows)})

    async def _add_relations(self, session: Executor,
                             links: dict[str, Sequence[RelationIn]]) -> None:
        """Relations of one or many documents in one statement that also checks their
        targets exist; only when one is missing, a lookup says which."""
        rows = [{"source_id": doc_id, "type": type, "target_id": target_id}
                for doc_id, relations in links.items()
                for type, target_id in sorted({(r.type, r.target_id) for r in relations})]
        if not rows:
            return
        if any(row["source_id"] == row["target_id"] for row in rows):
            raise Rejected("A document cannot be related to itself.", field="relations")
        done = await session.execute(self._insert_relations,
                                     {"rows": json_param(rows), "now": utcnow()})
        if cast(sa.CursorResult[Any], done).rowcount == len(rows):
            return
        targets = {row["target_id"] for row in rows}
        found = set((await session.scalars(
            sa.select(Document.id).where(Document.id.in_(targets)))).all())
        if found == targets:  # the rest were there already
            return
        raise Rejected(f"Relation targets do not exist: {', '.join(sorted(targets - found))}.",
                            field="relations")

    async def _replay(self, principal: str, idem: Idempotency | None) -> StoredDocument | None:
        if idem is None:
            return None
        async with self.db.session() as session:
            row = await session.get(IdempotencyKey, (principal, idem.key))
        if row is None:
            return None
        if row.request_hash != idem.request_hash:
            raise Rejected("This Idempotency-Key was used for a different request.",
                                field="Idempotency-Key")
        return StoredDocument.model_validate({**row.response, "created": False})

    async def _idempotent(self, principal: str, idem: Idempotency | None,
                          run: Callable[[], Awaitable[tuple[StoredDocument, str]]]
                          ) -> StoredDocument:
        """A keyed write goes straight to its rows, with no lookup first: a retry (or a
        concurrent twin) fails on the key's primary key, or earlier on the document's
        changed state (a stale If-Match, a deletion), its transaction rolls back, and
        then it gets the key's first answer (a 422 when the request differs)."""
        try:
            stored, _ = await run()
        except (IntegrityError, DocStoreError):
            replayed = await self._replay(principal, idem)
            if replayed is None:
                raise
            return replayed
        return stored

    @staticmethod
    async def _remember(session: Executor, principal: str, idem: Idempotency | None,
                        stored: StoredDocument) -> None:
        if idem is not None:
            await session.execute(INSERT_IDEMPOTENCY, {
                "principal": principal, "key": idem.key, "request_hash": idem.request_hash,
                "status": 201, "response": stored.model_dump(mode="json"),
                "created_at": utcnow()})

    async def find_duplicate(self, content_hash: str, source: str) -> StoredDocument | None:
        async with self.db.reader() as conn:
            rows = (await conn.execute(DUPLICATE, {"hash": content_hash,
                                                   "source": source})).all()
        found = _rows_as(StoredDocument, rows, created=False)
        return found[0] if found else None

    async def create(self, principal: str, fields: DocumentCreate, content: Content, *,
                     dedupe: bool = True, idem: Idempotency | None = None) -> StoredDocument:
        if dedupe:
            existing = await self.find_duplicate(content.hash, fields.source)
            if existing is not None:
                return existing
        doc_id, now = new_id(), utcnow()
        title = fields.title or content.filename or "untitled"
        author = fields.author or principal
        doc = {"id": doc_id, "title": title, "format": fields.format or "markdown",
               "source": fields.source, "author": author, "version": 1,
               "metadata": fields.metadata, "created_at": now, "updated_at": now}
        tags = sorted(set(fields.tags))

        async def work(conn: AsyncConnection, key: str | None
                       ) -> tuple[StoredDocument, str]:
            """Core INSERTs of values known beforehand, so the answer (and the key's
            row, the first write: a retry stops there) is built before any statement."""
            ver = self._version_values(doc_id, 1, title, content, key, fields, author, now)
            stored = StoredDocument(**_summary(doc, ver, tags))
            await self._remember(conn, principal, idem, stored)
            await conn.execute(INSERT_DOCUMENT, doc)
            await conn.execute(INSERT_VERSION, ver)
            await self._add_tags(conn, [{"document_id": doc_id, "tag": tag}
                                        for tag in tags])
            await self._add_relations(conn, {doc_id: fields.relations})
            return stored, "llmdocs.document.stored"

        return await self._idempotent(
            principal, idem, lambda: self._write(content, work, doc_id, self._announce))

    async def _bump(self, session: Executor, doc_id: str, expected: int | None,
                    title: str | None, format: str | None) -> Mapping[Any, Any]:
        """Take the next version number (the transaction's first write), or say why not;
        the document's columns as they are now."""
        docs = DOCUMENTS.c
        values: dict[str, Any] = {"version": docs.version + 1, "updated_at": utcnow()}
        if title:
            values["title"] = title
        if format:
            values["format"] = format
        stmt = sa.update(DOCUMENTS).where(docs.id == doc_id, docs.deleted_at.is_(None))
        if expected is not None:
            stmt = stmt.where(docs.version == expected)
        bumped = (await session.execute(stmt.values(**values).returning(*docs))).first()
        if bumped is None:
            current = (await session.execute(sa.select(docs.version).where(
                docs.id == doc_id, docs.deleted_at.is_(None)))).scalar()
            if current is None:
                raise NotFoundError(f"No document {doc_id!r}.")
            raise StaleVersion(f"The document is at version {current}, not "
                               f"{expected}; fetch it again and retry.")
        await session.execute(sa.update(VERSIONS).where(
            VERSIONS.c.document_id == doc_id, VERSIONS.c.is_current)
            .values(is_current=False))
        return bumped._mapping

    async def update(self, principal: str, doc_id: str, fields: DocumentFields,
                     content: Content, *, expected: int | None = None,
                     idem: Idempotency | None = None) -> StoredDocument:
        async def work(conn: AsyncConnection, key: str | None
                       ) -> tuple[StoredDocument, str]:
            doc = await self._bump(conn, doc_id, expected, fields.title, fields.format)
            ver = self._version_values(doc_id, doc["version"], doc["title"], content, key,
                                       fields, principal, utcnow())
            await conn.execute(INSERT_VERSION, ver)
            await self._add_relations(conn, {doc_id: fields.relations})
            tags = await self._tags(conn, [doc_id])
            stored = StoredDocument(**_summary(doc, ver, tags.get(doc_id, [])))
            await self._remember(conn, principal, idem, stored)
            return stored, "llmdocs.document.updated"

        return await self._idempotent(
            principal, idem, lambda: self._write(content, work, doc_id, self._announce))

    async def rollback(self, principal: str, doc_id: str, version: int, message: str | None,
                       *, expected: int | None = None) -> StoredDocument:
        """A new version equal to `version` (its blob is shared, never copied)."""
        async def work(conn: AsyncConnection, _key: str | None
                       ) -> tuple[StoredDocument, str]:
            old = await self._version(conn, doc_id, version)
            doc = await self._bump(conn, doc_id, expected, old.title, None)
            ver = {**old._mapping, "version": doc["version"], "is_current": True,
                   "author": principal, "message": message or f"rollback to version {version}",
                   "created_at": utcnow()}
            del ver["id"]
            await conn.execute(INSERT_VERSION, ver)
            tags = await self._tags(conn, [doc_id])
            return (StoredDocument(**_summary(doc, ver, tags.get(doc_id, []))),
                    "llmdocs.document.updated")

        stored, _ = await self._write(None, work, doc_id, self._announce)
        return stored

    async def patch(self, doc_id: str, change: DocumentPatch,
                    expected: int | None = None) -> DocumentSummary:
        async with self.db.transaction() as session:
            stmt = sa.update(Document).where(Document.id == doc_id,
                                             Document.deleted_at.is_(None))
            if expected is not None:
                stmt = stmt.where(Document.version == expected)
            values: dict[str, Any] = {"updated_at": utcnow()}
            if change.source is not None:
                values["source"] = change.source
            if change.author is not None:
                values["author"] = change.author
            touched = (await session.execute(stmt.values(**values)
                                             .returning(Document.id))).first()
            doc = await self._document(session, doc_id)
            if touched is None:
                raise StaleVersion(f"The document is at version {doc.version}, not "
                                   f"{expected}; fetch it again and retry.")
            if change.metadata is not None:
                merged = {**doc.meta, **change.metadata}
                doc.meta = {k: v for k, v in merged.items() if v is not None}
            if change.tags is not None:
                await session.execute(sa.delete(Tag).where(Tag.document_id == doc_id))
                await self._add_tags(session, [{"document_id": doc_id, "tag": t}
                                               for t in sorted(set(change.tags))])
            await session.flush()
            summary = await self._summaries(session, [doc_id])
        await self._publish("llmdocs.document.updated", doc_id, doc.version,
                            summary[0].content_hash, doc.source)
        return summary[0]

    async def soft_delete(self, doc_id: str) -> None:
        await self._set_deleted(doc_id, utcnow())

    async def restore(self, doc_id: str) -> DocumentSummary:
        await self._set_deleted(doc_id, None)
        async with self.db.session() as session:
            return (await self._summaries(session, [doc_id]))[0]

    async def _set_deleted(self, doc_id: str, when: datetime | None) -> None:
        async with self.db.transaction() as session:
            already = Document.deleted_at.is_(None) if when else Document.deleted_at.is_not(None)
            changed = (await session.execute(
                sa.update(Document).where(Document.id == doc_id, already)
                .values(deleted_at=when, updated_at=utcnow())
                .returning(Document.version, Document.source))).first()
            if changed is None:
                await self._document(session, doc_id, include_deleted=True)
                state = "already deleted" if when else "not deleted"
                raise WrongState(f"The document is {state}.")
            ver = await self._version(session, doc_id, changed[0])
        type = "llmdocs.document.deleted" if when else "llmdocs.document.restored"
        await self._publish(type, doc_id, changed[0], ver.content_hash, changed[1])

    async def hard_delete(self, doc_id: str) -> None:
        """Rows first, in one transaction; blobs after the commit (a leftover blob is
        logged, a row without its blob never exists)."""
        async with self.db.transaction() as session:
            doc = await self._document(session, doc_id, include_deleted=True)
            current = await self._version(session, doc_id, doc.version)
            keys = (await session.scalars(sa.select(Version.blob_key).distinct().where(
                Version.document_id == doc_id, Version.blob_key.is_not(None)))).all()
            await session.execute(sa.delete(Version).where(Version.document_id == doc_id))
            await session.execute(sa.delete(Document).where(Document.id == doc_id))
        await self._drop_blobs([k for k in keys if k])
        await self._publish("llmdocs.document.deleted", doc_id, doc.version,
                            current.content_hash, doc.source)

    async def add_relation(self, doc_id: str, relation: RelationIn) -> RelationList:
        async with self.db.transaction() as session:
            await self._document(session, doc_id)
            exists = await session.get(Relation, (doc_id, relation.type, relation.target_id))
            if exists is None:
                await self._add_relations(session, {doc_id: [relation]})
        return await self.relations(doc_id)

    async def remove_relation(self, doc_id: str, type: str, target_id: str) -> None:
        async with self.db.transaction() as session:
            gone = await session.execute(sa.delete(Relation).where(
                Relation.source_id == doc_id, Relation.type == type,
                Relation.target_id == target_id))
            if getattr(gone, "rowcount", 0) == 0:
                raise NotFoundError("No such relation.")

    # -- bulk ------------------------------------------------------------------------

    def prepare(self, principal: str, items: Sequence[DocumentCreate]
                ) -> list[Prepared | DocStoreError]:
        """What a bulk batch needs besides the database (content, hash, id, JSON row,
        stored event), so the API does it for the next batch while one is written."""
        out: list[tuple[DocumentCreate, Content, str, str] | DocStoreError] = []
        for item in items:
            try:
                content = Content.of_text(item.content, item.format or "markdown")
            except DocStoreError as problem:
                out.append(problem)
                continue
            doc_id = new_id()
            row = json_param({
                "id": doc_id, "title": item.title or "untitled",
                "format": item.format or "markdown", "source": item.source,
                "author": item.author or principal, "metadata": item.metadata,
                "content": content.text, "media_type": content.media_type,
                "size": len(content.data), "content_hash": content.hash,
                "provenance": item.provenance, "message": item.message})
            out.append((item, content, doc_id, row))
        events = iter(self._events("llmdocs.document.stored", [
            (doc_id, 1, content.hash, item.source)
            for item, content, doc_id, _ in (p for p in out if not isinstance(p, DocStoreError))]))
        return [p if isinstance(p, DocStoreError) else Prepared(*p, next(events)) for p in out]

    async def store_many(self, principal: str, batch: Sequence[Prepared | DocStoreError]
                         ) -> list[Ingested | DocStoreError]:
        """Store a prepared batch in one transaction, deduplicated like `create` (against
        stored documents and within the batch); if the batch fails as a whole, store its
        documents one by one so each line gets its own answer and nothing is half-stored.
        One lookup, two INSERTs and one event publish per batch, however long."""
        # a NUL character would cut a value short in SQLite's JSON functions (and
        # PostgreSQL refuses it in text): such lines take the one-by-one path
        ready = [p for p in batch if isinstance(p, Prepared) and NUL not in p.row]
        known = await self._duplicates([(p.content.hash, p.item.source) for p in ready])
        fresh: dict[tuple[str, str], Prepared] = {}
        for p in ready:
            pair = (p.content.hash, p.item.source)
            if pair not in known:
                fresh.setdefault(pair, p)
        try:
            await self._insert_batch(list(fresh.values()))
        except (DocStoreError, SQLAlchemyError):
            fresh = {}
        settled = fresh.keys() | known.keys()
        alone = {id(p): await self._create_one(principal, p) for p in batch
                 if isinstance(p, Prepared) and (p.content.hash, p.item.source) not in settled}
        await self._refresh_statistics(len(fresh))
        await self.events.publish_many([p.event for p in fresh.values()])
        answers: list[Ingested | DocStoreError] = []
        for line in batch:
            if isinstance(line, DocStoreError) or id(line) in alone:
                answers.append(line if isinstance(line, DocStoreError) else alone[id(line)])
                continue
            pair = (line.content.hash, line.item.source)
            first = fresh.get(pair)
            answers.append(known[pair] if first is None else
                           Ingested(first.doc_id, 1, line.content.hash, first is line))
        return answers

    async def _refresh_statistics(self, inserted: int) -> None:
        """PostgreSQL plans from table statistics that autovacuum refreshes only a while
        after an import; until then a table of 100,000 rows can look empty and a search
        joins it row by row. And new GIN entries wait in the index's pending list, which
        every search scans in full. So once an import grew the tables by a fifth, ANALYZE
        and merge the pending list into the index."""
        if self.db.dialect != "postgresql":
            return
        self._unanalysed += inserted
        if self._unanalysed < max(BULK_ANALYZE_MIN, STALE_SHARE * self._analysed):
            return
        self._unanalysed = 0
        await self._maintain(analyze=True)

    async def settle_import(self) -> None:
        """After a bulk request that stored documents: on PostgreSQL, merge the GIN
        index's pending list. Until an insert overflows it (4 MB by default, thousands
        of documents) every search scans it in full, which cost a mid-frequency search
        ~0.5 ms of its ~4 ms at 200,000 documents; the merge is work the next inserts
        would do anyway."""
        if self.db.dialect == "postgresql":
            await self._maintain(analyze=False)

    async def _maintain(self, *, analyze: bool) -> None:
        try:
            async with self.db.transaction() as session:
                if analyze:
                    await session.execute(sa.text(
                        "ANALYZE docstore_documents, docstore_versions, docstore_tags"))
                await session.execute(sa.text(
                    "SELECT gin_clean_pending_list('ix_docstore_versions_search')"))
                if analyze:
                    self._analysed = int((await session.execute(sa.text(
                        "SELECT ndocs FROM docstore_search_stats WHERE id = 1"))).scalar_one())
        except SQLAlchemyError as exc:  # e.g. not the tables' owner: plans are just slower
            log.warning("docstore_maintenance_failed", error=str(exc))

    async def _create_one(self, principal: str, p: Prepared) -> Ingested | DocStoreError:
        try:
            stored = await self.create(principal, p.item, p.content)
        except DocStoreError as problem:
            return problem
        except SQLAlchemyError as exc:  # e.g. text PostgreSQL cannot hold (a NUL byte)
            log.warning("bulk_line_rejected", error=str(exc).splitlines()[0])
            return Rejected("The database rejected this document's values.")
        return Ingested(stored.document_id, stored.version, stored.content_hash,
                        stored.created)

    async def _duplicates(self, pairs: Sequence[tuple[str, str]]
                          ) -> dict[tuple[str, str], Ingested]:
        """The live documents whose current version has one of these (hash, source):
        one lookup for the whole batch, its hashes bound as one JSON array."""
        if not pairs:
            return {}
        versions, docs = VERSIONS, DOCUMENTS
        hashes = json_values(self.db.dialect, "hashes")
        async with self.db.session() as session:
            rows = await session.execute(
                sa.select(docs.c.id, docs.c.version, versions.c.content_hash, docs.c.source)
                .join(versions, sa.and_(versions.c.document_id == docs.c.id,
                                        versions.c.is_current))
                .where(versions.c.content_hash.in_(hashes), docs.c.deleted_at.is_(None))
                .order_by(docs.c.created_at.desc()),
                {"hashes": json_param(sorted({h for h, _ in pairs}))})
        wanted = set(pairs)
        return {(h, source): Ingested(doc_id, version, h, False)
                for doc_id, version, h, source in rows if (h, source) in wanted}

    async def _insert_batch(self, batch: Sequence[Prepared]) -> None:
        """The batch's documents and versions, each table by one INSERT … SELECT from
        one JSON array of rows (see `insert_json_rows`): no per-row work in Python or the
        driver, and PostgreSQL's statement-level term-statistics trigger fires once."""
        if not batch:
            return
        tags = [{"document_id": p.doc_id, "tag": t}
                for p in batch for t in sorted(set(p.item.tags))]
        links: dict[str, Sequence[RelationIn]] = {
            p.doc_id: p.item.relations for p in batch if p.item.relations}
        params = {"rows": "[" + ",".join(p.row for p in batch) + "]", "now": utcnow()}
        dialect = self.db.dialect

        async def work(conn: AsyncConnection, _key: str | None) -> None:
            await conn.execute(insert_json_rows(dialect, DOCUMENTS, BULK_DOCUMENT), params)
            await conn.execute(insert_json_rows(dialect, VERSIONS, BULK_VERSION), params)
            await self._add_tags(conn, tags)
            await self._add_relations(conn, links)

        with in_thread():  # thousands of rows: SQLite writes them while the loop goes on
            await self._write(None, work, "")

    # -- reading ---------------------------------------------------------------------

    @staticmethod
    async def _document(session: AsyncSession, doc_id: str,
                        include_deleted: bool = False) -> Document:
        doc = await session.get(Document, doc_id)
        if doc is None or (doc.deleted_at is not None and not include_deleted):
            raise NotFoundError(f"No document {doc_id!r}.")
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
        by_id = {s.document_id: s for s in _rows_as(DocumentSummary, rows)}
        return [by_id[i] for i in ids if i in by_id]

    async def get(self, doc_id: str, reader: Principal, version: int | None = None,
                  include_deleted: bool = False) -> tuple[DocumentOut, VersionRow]:
        async with self.db.session() as session:
            doc = await self._document(session, doc_id, include_deleted)
            ver = await self._version(session, doc_id, version or doc.version)
            tags = await self._tags(session, [doc_id])
        out = DocumentOut(**_summary(_columns(doc), ver._mapping, tags.get(doc_id, [])),
                          content=ver.content,
                          content_url=content_url(doc_id, version),
                          provenance=as_seen_by(ver.provenance, reader, ADMIN))
        return out, ver

    async def read_bytes(self, ver: VersionRow) -> bytes:
        if ver.blob_key is None:
            return (ver.content or "").encode("utf-8")
        return await self.blobs.get(ver.blob_key)

    async def versions(self, doc_id: str) -> VersionList:
        async with self.db.session() as session:
            await self._document(session, doc_id)
            rows = (await session.execute(
                sa.select(*(c for c in VERSIONS.c if c.name != "content"))
                .where(VERSIONS.c.document_id == doc_id)
                .order_by(VERSIONS.c.version.desc()))).all()
        return VersionList(document_id=doc_id,
                           items=[VersionOut(**_version_out(v)) for v in rows])

    async def version(self, doc_id: str, version: int, reader: Principal) -> VersionDetail:
        async with self.db.session() as session:
            await self._document(session, doc_id)
            ver = await self._version(session, doc_id, version)
        return VersionDetail(**_version_out(ver), content=ver.content,
                             content_url=content_url(doc_id, version),
                             provenance=as_seen_by(ver.provenance, reader, ADMIN))

    async def diff(self, doc_id: str, old: int, new: int) -> DiffOut:
        async with self.db.session() as session:
            await self._document(session, doc_id)
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
        items = _rows_as(DocumentSummary, rows[:limit])
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

    async def relations(self, doc_id: str, type: str | None = None) -> RelationList:
        async with self.db.session() as session:
            await self._document(session, doc_id)
            typed = [Relation.type == type] if type else []
            out = (await session.scalars(sa.select(Relation).where(
                Relation.source_id == doc_id, *typed).order_by(Relation.created_at))).all()
            inc = (await session.scalars(sa.select(Relation).where(
                Relation.target_id == doc_id, *typed).order_by(Relation.created_at))).all()

        def shape(rel: Relation) -> RelationOut:
            return RelationOut.model_validate(
                {"source_id": rel.source_id, "type": rel.type, "target_id": rel.target_id,
                 "created_at": aware(rel.created_at)})

        return RelationList(document_id=doc_id, outgoing=[shape(r) for r in out],
                            incoming=[shape(r) for r in inc])

    async def provenance(self, doc_id: str, reader: Principal, version: int | None = None
                         ) -> ProvenanceOut:
        async with self.db.session() as session:
            doc = await self._document(session, doc_id)
            ver = await self._version(session, doc_id, version or doc.version)
        return ProvenanceOut(document_id=doc_id, version=ver.version,
                             content_hash=ver.content_hash,
                             provenance=as_seen_by(ver.provenance, reader, ADMIN),
                             relations=await self.relations(doc_id))

    async def lineage(self, doc_id: str, direction: Literal["up", "down"],
                      depth: int) -> Lineage:
        """Walk derived_from / supersedes edges breadth-first: `up` to what a document
        came from, `down` to what came from it. Each document appears once."""
        near, far = ((Relation.source_id, Relation.target_id) if direction == "up"
                     else (Relation.target_id, Relation.source_id))
        nodes: list[LineageNode] = []
        seen = {doc_id}
        frontier = [doc_id]
        async with self.db.session() as session:
            await self._document(session, doc_id)
            for level in range(1, depth + 1):
                if not frontier:
                    break
                rows = (await session.execute(
                    sa.select(near, far, Relation.type)
                    .where(near.in_(frontier), Relation.type.in_(LINEAGE_TYPES))
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
