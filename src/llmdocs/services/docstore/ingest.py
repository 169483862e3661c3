"""The doc-store's single writes. The blob goes first under a fresh key, then the rows in
one transaction that starts with a write (SQLite locks at once, PostgreSQL locks the
row); a failed transaction removes its blob, so no version ever lacks one."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from llmdocs.core.db import (
    RowFields,
    insert_json_rows,
    json_param,
    json_rows,
    utcnow,
)
from llmdocs.core.events import Event, make_event
from llmdocs.core.idempotency import forget_expired
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var
from llmdocs.core.resources import Resources
from llmdocs.core.spaces import SpaceView
from llmdocs.services.docstore.blobs import BlobStore, is_key
from llmdocs.services.docstore.errors import (
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
from llmdocs.services.docstore.queries import (
    BINARY_FORMATS,
    DUPLICATE,
    Executor,
    Queries,
    is_text_format,
    media_type_for,
    rows_as,
    summary_fields,
)
from llmdocs.services.docstore.schemas import (
    DocumentCreate,
    DocumentFields,
    DocumentPatch,
    DocumentSummary,
    RelationIn,
    RelationList,
    StaleMark,
    StoredDocument,
)
from llmdocs.services.docstore.search import SEARCHABLE_VERSIONS, search_terms

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Bulk rows: target column -> the key of a JSON row holding its value, or a constant
# (`:now` is bound once per batch, so SQLAlchemy still formats the time per dialect).
NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
RELATION_ROWS: RowFields = {"source_id": "source_id", "type": "type",
                            "target_id": "target_id", "created_at": NOW}
INSERT_DOCUMENT = sa.insert(DOCUMENTS)
INSERT_VERSION = sa.insert(VERSIONS)
# on PostgreSQL, with its search terms from the plaintext bound beside the row
INSERT_SEARCHABLE_VERSION = sa.insert(SEARCHABLE_VERSIONS).values(search_vector=search_terms(
    sa.bindparam("terms_title", type_=sa.Text), sa.bindparam("terms_content", type_=sa.Text)))
INSERT_IDEMPOTENCY = sa.insert(IDEMPOTENCY)


def insert_relations(dialect: str) -> sa.Insert:
    """The relations bound as one JSON array `rows` whose target exists: the insert is
    the existence check (fewer rows inserted than given means a target is missing, or
    the relation was there already: a new version naming its relations again)."""
    columns, rows = json_rows(dialect, RELATIONS, RELATION_ROWS)
    target = rows.selected_columns[columns.index("target_id")]
    insert = postgresql.insert(RELATIONS) if dialect == "postgresql" else sqlite.insert(RELATIONS)
    return insert.from_select(
        columns, rows.where(target.in_(sa.select(DOCUMENTS.c.id)))).on_conflict_do_nothing()

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

@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


class Writes(Queries):
    """The store's single writes, on top of its reads."""

    def __init__(self, resources: Resources, blobs: BlobStore) -> None:
        super().__init__(resources, blobs)
        self._insert_relations = insert_relations(self.db.dialect)
        self._insert_tags = insert_json_rows(self.db.dialect, TAGS, {
            "document_id": "document_id", "tag": "tag"})

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
    def _events(type: str, changes: Sequence[tuple[str, int, str, str, str]]) -> list[Event]:
        """One event per (id, version, hash, source, space); the envelope (correlation
        id, trace context) is stamped once and copied, which matters for imports of
        thousands. The space is on the envelope too, for whoever delivers it to users."""
        if not changes:
            return []
        correlation_id = correlation_id_var.get()
        template = make_event("docstore", type, {})
        return [template.model_copy(update={
                    "id": new_id(), "subject": doc_id, "space": space,
                    "data": {"id": doc_id, "version": version, "content_hash": content_hash,
                             "source": source, "space": space,
                             "correlation_id": correlation_id}})
                for doc_id, version, content_hash, source, space in changes]

    def _announce(self, written: tuple[StoredDocument, str]) -> list[Event]:
        stored, type = written
        return self._events(type, [(stored.document_id, stored.version,
                                    stored.content_hash, stored.source, stored.space)])

    async def _publish(self, type: str, doc_id: str, version: int, content_hash: str,
                       source: str, space: str) -> None:
        await self.events.publish(self._events(type, [(doc_id, version, content_hash,
                                                       source, space)])[0])

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

    async def _insert_version(self, conn: AsyncConnection, ver: Mapping[str, Any]) -> None:
        if self.db.dialect != "postgresql":
            await conn.execute(INSERT_VERSION, ver)
            return
        await conn.execute(INSERT_SEARCHABLE_VERSION, {
            **ver, "terms_title": ver["title"], "terms_content": ver["content"]})

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

    async def _replay(self, principal: str, idempotency: Idempotency | None
                      ) -> StoredDocument | None:
        if idempotency is None:
            return None
        async with self.db.session() as session:
            row = await session.get(IdempotencyKey, (principal, idempotency.key))
        if row is None:
            return None
        if row.request_hash != idempotency.request_hash:
            raise Rejected("This Idempotency-Key was used for a different request.",
                           field="Idempotency-Key")
        return StoredDocument.model_validate(row.response)  # the first answer, as given

    async def _idempotent(self, principal: str, idempotency: Idempotency | None,
                          run: Callable[[], Awaitable[tuple[StoredDocument, str]]]
                          ) -> StoredDocument:
        """A keyed write goes straight to its rows, with no lookup first: a retry (or a
        concurrent twin) fails on the key's primary key, or earlier on the document's
        changed state (a stale If-Match, a deletion), its transaction rolls back, and
        then it gets the key's first answer (a 422 when the request differs). A twin
        sent while the first runs waits for it on the key's row instead of a 409. Keys
        are kept 24 hours, as core.idempotency's."""
        if idempotency is not None:
            async with self.db.transaction() as session:
                await forget_expired(session, IdempotencyKey, utcnow())
        try:
            stored, _ = await run()
        except (IntegrityError, DocStoreError):
            replayed = await self._replay(principal, idempotency)
            if replayed is None:
                raise
            return replayed
        return stored

    @staticmethod
    async def _remember(session: Executor, principal: str, idempotency: Idempotency | None,
                        stored: StoredDocument) -> None:
        if idempotency is not None:
            await session.execute(INSERT_IDEMPOTENCY, {
                "principal": principal, "key": idempotency.key,
                "request_hash": idempotency.request_hash,
                "status": 201, "response": stored.model_dump(mode="json"),
                "created_at": utcnow()})

    async def find_duplicate(self, content_hash: str, source: str, space: str
                             ) -> StoredDocument | None:
        async with self.db.reader() as conn:
            rows = (await conn.execute(DUPLICATE, {"hash": content_hash, "source": source,
                                                   "space": space})).all()
        found = rows_as(StoredDocument, rows, created=False)
        return found[0] if found else None

    async def create(self, principal: str, fields: DocumentCreate, content: Content, *,
                     dedupe: bool = True, idempotency: Idempotency | None = None) -> StoredDocument:
        if dedupe:
            existing = await self.find_duplicate(content.hash, fields.source, fields.space)
            if existing is not None:
                return existing
        doc_id, now = new_id(), utcnow()
        title = fields.title or content.filename or "untitled"
        author = fields.author or principal
        doc = {"id": doc_id, "space": fields.space, "title": title,
               "format": fields.format or "markdown", "source": fields.source,
               "author": author, "version": 1, "metadata": fields.metadata,
               "created_at": now, "updated_at": now}
        tags = sorted(set(fields.tags))

        async def work(conn: AsyncConnection, key: str | None
                       ) -> tuple[StoredDocument, str]:
            """Core INSERTs of values known beforehand, so the answer (and the key's
            row, the first write: a retry stops there) is built before any statement."""
            ver = self._version_values(doc_id, 1, title, content, key, fields, author, now)
            stored = StoredDocument(**summary_fields(doc, ver, tags))
            await self._remember(conn, principal, idempotency, stored)
            await conn.execute(INSERT_DOCUMENT, doc)
            await self._insert_version(conn, ver)
            await self._add_tags(conn, [{"document_id": doc_id, "tag": tag}
                                        for tag in tags])
            await self._add_relations(conn, {doc_id: fields.relations})
            return stored, "llmdocs.document.stored"

        return await self._idempotent(
            principal, idempotency, lambda: self._write(content, work, doc_id, self._announce))

    async def _bump(self, session: Executor, doc_id: str, expected: int | None,
                    title: str | None, format: str | None) -> Mapping[Any, Any]:
        """Take the next version number (the transaction's first write), or say why not;
        the document's columns as they are now."""
        docs = DOCUMENTS.c
        # a new version is written from the sources as they are now: no longer stale
        values: dict[str, Any] = {"version": docs.version + 1, "updated_at": utcnow(),
                                  "stale_reason": None, "stale_finding": None}
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
                     idempotency: Idempotency | None = None) -> StoredDocument:
        async def work(conn: AsyncConnection, key: str | None
                       ) -> tuple[StoredDocument, str]:
            doc = await self._bump(conn, doc_id, expected, fields.title, fields.format)
            ver = self._version_values(doc_id, doc["version"], doc["title"], content, key,
                                       fields, principal, utcnow())
            await self._insert_version(conn, ver)
            await self._add_relations(conn, {doc_id: fields.relations})
            tags = await self._tags(conn, [doc_id])
            stored = StoredDocument(**summary_fields(doc, ver, tags.get(doc_id, [])))
            await self._remember(conn, principal, idempotency, stored)
            return stored, "llmdocs.document.updated"

        return await self._idempotent(
            principal, idempotency, lambda: self._write(content, work, doc_id, self._announce))

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
            await self._insert_version(conn, ver)
            tags = await self._tags(conn, [doc_id])
            return (StoredDocument(**summary_fields(doc, ver, tags.get(doc_id, []))),
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
                            summary[0].content_hash, doc.source, doc.space)
        return summary[0]

    async def mark_stale(self, doc_id: str, mark: StaleMark) -> DocumentSummary:
        """Say why the current version no longer matches its sources; a document that
        moved past `mark.version` meanwhile was written from newer sources (412)."""
        async with self.db.transaction() as session:
            stmt = sa.update(Document).where(Document.id == doc_id,
                                             Document.deleted_at.is_(None))
            if mark.version is not None:
                stmt = stmt.where(Document.version == mark.version)
            touched = (await session.execute(stmt.values(
                stale_reason=mark.reason, stale_finding=mark.finding_id)
                .returning(Document.id))).first()
            if touched is None:
                doc = await self._document(session, doc_id)
                raise StaleVersion(f"The document is at version {doc.version}, not "
                                   f"{mark.version}: that version is not stale.")
            return (await self._summaries(session, [doc_id]))[0]

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
                .returning(Document.version, Document.source, Document.space))).first()
            if changed is None:
                await self._document(session, doc_id, include_deleted=True)
                state = "already deleted" if when else "not deleted"
                raise WrongState(f"The document is {state}.")
            ver = await self._version(session, doc_id, changed[0])
        type = "llmdocs.document.deleted" if when else "llmdocs.document.restored"
        await self._publish(type, doc_id, changed[0], ver.content_hash, changed[1],
                            changed[2])

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
                            current.content_hash, doc.source, doc.space)

    async def add_relation(self, doc_id: str, relation: RelationIn, view: SpaceView
                           ) -> RelationList:
        async with self.db.transaction() as session:
            await self._document(session, doc_id)
            exists = await session.get(Relation, (doc_id, relation.type, relation.target_id))
            if exists is None:
                await self._add_relations(session, {doc_id: [relation]})
        return await self.relations(doc_id, view)

    async def remove_relation(self, doc_id: str, type: str, target_id: str) -> None:
        async with self.db.transaction() as session:
            gone = await session.execute(sa.delete(Relation).where(
                Relation.source_id == doc_id, Relation.type == type,
                Relation.target_id == target_id))
            if getattr(gone, "rowcount", 0) == 0:
                raise NotFoundError("No such relation.")
