"""Bulk import: NDJSON lines parsed, prepared and stored in batches, each batch in one
transaction, with the same deduplication as a single create."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson
import sqlalchemy as sa
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from llmdocs.core.db import (
    FromKeys,
    RowFields,
    SealedFields,
    insert_json_rows,
    json_param,
    json_values,
    utcnow,
)
from llmdocs.core.events import Event
from llmdocs.core.ids import new_id
from llmdocs.core.resources import Resources
from llmdocs.core.spaces import SpaceView
from llmdocs.core.sqlite import in_thread
from llmdocs.services.docstore.blobs import BlobStore
from llmdocs.services.docstore.errors import (
    DocStoreError,
    Rejected,
)
from llmdocs.services.docstore.ingest import NOW, Content, Writes
from llmdocs.services.docstore.models import (
    DOCUMENTS,
    VERSIONS,
)
from llmdocs.services.docstore.queries import BINARY_FORMATS
from llmdocs.services.docstore.schemas import (
    DocumentCreate,
    RelationIn,
)
from llmdocs.services.docstore.search import SEARCHABLE_VERSIONS, search_terms
from llmdocs.services.docstore.spaces import write_refusal

if TYPE_CHECKING:
    from llmdocs.services.docstore.service import DocStore

log = structlog.get_logger(__name__)

BULK_ANALYZE_MIN = 1000  # fewer new documents than this never trigger an ANALYZE
NUL = "\\u0000"  # how a NUL character appears in a JSON row
STALE_SHARE = 0.2  # new rows, as a share of the table, that make PostgreSQL's statistics stale

BULK_DOCUMENT: RowFields = {
    "id": "id", "space": "space", "title": "title", "format": "format", "source": "source",
    "author": "author", "metadata": "metadata", "version": sa.literal(1),
    "created_at": NOW, "updated_at": NOW}
BULK_VERSION: RowFields = {
    "document_id": "id", "title": "title", "content": "content",
    "media_type": "media_type", "size": "size", "content_hash": "content_hash",
    "provenance": "provenance", "author": "author", "message": "message",
    "version": sa.literal(1), "is_current": sa.true(), "created_at": NOW}


def insert_versions(dialect: str, sealed: bool) -> sa.Insert:
    """A batch's versions; on PostgreSQL with their search terms, from the rows' `plain`
    text when `content` holds ciphertext."""
    if dialect != "postgresql":
        return insert_json_rows(dialect, VERSIONS, BULK_VERSION)
    terms = FromKeys(search_terms, (("title", sa.Text()), ("plain" if sealed else "content",
                                                          sa.Text())))
    return insert_json_rows(dialect, SEARCHABLE_VERSIONS, {**BULK_VERSION,
                                                           "search_vector": terms})


Twin = tuple[str, str, str]  # (content hash, source, space): what deduplication compares


class Prepared(NamedTuple):
    """A bulk line made ready to store: its id and its row as JSON (see `prepare`)."""

    item: DocumentCreate
    content: Content
    doc_id: str
    row: str
    event: Event  # its llmdocs.document.stored, published if it is stored

    @property
    def twin(self) -> Twin:
        """What a document identical to this one shares with it (see `DUPLICATE`)."""
        return self.content.hash, self.item.source, self.item.space


class Ingested(NamedTuple):
    """A bulk line's answer: all an import needs, without building a full summary."""

    document_id: str
    version: int
    content_hash: str
    created: bool

BULK_BATCH = 5000
BULK_BATCH_BYTES = 8 * 1024 * 1024  # a batch of large documents ends sooner
# Lines parsed or prepared between two turns of the event loop: the batch being written
# waits for the loop between its database steps, so no CPU stretch may be long.
STEP_LINES = 200


class BulkWrites(Writes):
    """Batches of documents in one transaction each, on top of the single writes."""

    def __init__(self, resources: Resources, blobs: BlobStore) -> None:
        super().__init__(resources, blobs)
        self._unanalysed = 0  # documents this process bulk-inserted since its last ANALYZE
        self._analysed = 0  # documents in the table at that ANALYZE
        self._terms_apart = self.db.dialect == "postgresql" and self.db.seals(
            VERSIONS.c.content)  # rows carry their plaintext for the search terms
        self._insert_versions = insert_versions(self.db.dialect, self._terms_apart)
        self._provenance = cast(SealedFields, VERSIONS.c.provenance.type)


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
                "id": doc_id, "space": item.space, "title": item.title or "untitled",
                "format": item.format or "markdown", "source": item.source,
                "author": item.author or principal, "metadata": item.metadata,
                "content": self.db.seal(content.text, VERSIONS.c.content),
                "media_type": content.media_type,
                "size": len(content.data), "content_hash": content.hash,
                "provenance": self._provenance.sealed(item.provenance, self.db.ring),
                "message": item.message,
                **({"plain": content.text} if self._terms_apart else {})})
            out.append((item, content, doc_id, row))
        events = iter(self._events("llmdocs.document.stored", [
            (doc_id, 1, content.hash, item.source, item.space)
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
        known = await self._duplicates([p.twin for p in ready])
        fresh: dict[Twin, Prepared] = {}
        for p in ready:
            if p.twin not in known:
                fresh.setdefault(p.twin, p)
        try:
            await self._insert_batch(list(fresh.values()))
        except (DocStoreError, SQLAlchemyError):
            fresh = {}
        settled = fresh.keys() | known.keys()
        alone = {id(p): await self._create_one(principal, p) for p in batch
                 if isinstance(p, Prepared) and p.twin not in settled}
        await self._refresh_statistics(len(fresh))
        await self.events.publish_many([p.event for p in fresh.values()])
        answers: list[Ingested | DocStoreError] = []
        for line in batch:
            if isinstance(line, DocStoreError) or id(line) in alone:
                answers.append(line if isinstance(line, DocStoreError) else alone[id(line)])
                continue
            first = fresh.get(line.twin)
            answers.append(known[line.twin] if first is None else
                           Ingested(first.doc_id, 1, line.content.hash, first is line))
        return answers

    async def _refresh_statistics(self, inserted: int) -> None:
        """Once imports grew the tables by a fifth, ANALYZE and merge the GIN pending
        list: until autovacuum comes, a table of 100,000 rows can look empty to the
        planner (a search joins it row by row) and every search scans that list."""
        if self.db.dialect != "postgresql":
            return
        self._unanalysed += inserted
        if self._unanalysed < max(BULK_ANALYZE_MIN, STALE_SHARE * self._analysed):
            return
        self._unanalysed = 0
        await self._maintain(analyze=True)

    async def settle_import(self) -> None:
        """After a bulk request that stored documents, merge the GIN index's pending list
        (PostgreSQL): every search scans it in full until an insert overflows it, ~0.5 ms
        of a ~4 ms search at 200,000 documents; the next inserts would do it anyway."""
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

    async def _duplicates(self, twins: Sequence[Twin]) -> dict[Twin, Ingested]:
        """The live documents whose current version has one of these (hash, source, space):
        one lookup for the whole batch, its hashes bound as one JSON array."""
        if not twins:
            return {}
        versions, docs = VERSIONS, DOCUMENTS
        hashes = json_values(self.db.dialect, "hashes")
        async with self.db.session() as session:
            rows = await session.execute(
                sa.select(docs.c.id, docs.c.version, versions.c.content_hash, docs.c.source,
                          docs.c.space)
                .join(versions, sa.and_(versions.c.document_id == docs.c.id,
                                        versions.c.is_current))
                .where(versions.c.content_hash.in_(hashes), docs.c.deleted_at.is_(None))
                .order_by(docs.c.created_at.desc()),
                {"hashes": json_param(sorted({twin[0] for twin in twins}))})
        wanted = set(twins)
        return {(h, source, space): Ingested(doc_id, version, h, False)
                for doc_id, version, h, source, space in rows if (h, source, space) in wanted}

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
            await conn.execute(self._insert_versions, params)
            await self._add_tags(conn, tags)
            await self._add_relations(conn, links)

        with in_thread():  # thousands of rows: SQLite writes them while the loop goes on
            await self._write(None, work, "")


async def ingest_ndjson(store: DocStore, principal: str, view: SpaceView,
                        chunks: AsyncIterator[bytes], limit: int,
                        status_of: Callable[[DocStoreError], int]) -> bytes:
    """One answer line per NDJSON line, in order. A batch is prepared while the one
    before it is written, and written after that one committed (so deduplication sees
    every earlier line); at most two batches wait, so a fast client is slowed down."""
    out: list[tuple[int, bytes]] = []  # (line number, answer): sorted at the end
    batch: list[tuple[int, DocumentCreate]] = []
    batch_bytes = 0
    writing: asyncio.Task[None] | None = None
    older: asyncio.Task[None] | None = None  # the batch before `writing`
    stored = False  # some line stored a new document

    async def admitted(lines: list[tuple[int, DocumentCreate]]) -> list[bool]:
        """Whether the caller may write each line (its space, its relation targets,
        checked once the batches before it are stored); the others are answered with
        the refusal a single write would get."""
        existing = await store.existing({item.space for _, item in lines})
        targets = {r.target_id for _, item in lines for r in item.relations}
        hidden = set() if view.everything else await store.hidden(targets, view)
        kept = []
        for line, item in lines:
            refused = write_refusal(item.space, view, existing)
            unseen = sorted(hidden.intersection(r.target_id for r in item.relations))
            if refused is None and unseen:
                refused = Rejected(f"Relation targets do not exist: {', '.join(unseen)}.")
            if refused is not None:
                fail(line, status_of(refused), refused.detail)
            kept.append(refused is None)
        return kept

    async def write(lines: list[tuple[int, DocumentCreate]],
                    before: asyncio.Task[None] | None) -> None:
        ready: list[Prepared | DocStoreError] = []
        for start in range(0, len(lines), STEP_LINES):
            ready += store.prepare(principal,
                                   [item for _, item in lines[start:start + STEP_LINES]])
            await asyncio.sleep(0)  # the batch being written takes its next step
        if before is not None:
            await before
        allowed = await admitted(lines)
        lines = [line for line, ok in zip(lines, allowed, strict=True) if ok]
        ready = [line for line, ok in zip(ready, allowed, strict=True) if ok]
        nonlocal stored
        results = await store.store_many(principal, ready)
        for (line, _), result in zip(lines, results, strict=True):
            if isinstance(result, DocStoreError):
                out.append(_bulk_answer(line, status_of(result), error=result.detail))
            else:
                stored = stored or result.created
                out.append(_bulk_answer(line, 201 if result.created else 200,
                                        document_id=result.document_id,
                                        version=result.version,
                                        content_hash=result.content_hash,
                                        created=result.created))

    def fail(line: int, status: int, error: str) -> None:
        out.append(_bulk_answer(line, status, error=error))

    async def flush() -> None:
        nonlocal writing, older, batch, batch_bytes
        if older is not None:
            await older
        older, writing = writing, asyncio.create_task(write(batch, writing))
        batch, batch_bytes = [], 0

    buffer = bytearray()
    number = 0
    skipping = False  # inside a line already reported as too long
    try:
        async for chunk in chunks:
            buffer += chunk
            start = 0  # lines are cut from the chunk in place, the rest kept at the end
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    del buffer[:start]
                    if len(buffer) > limit and not skipping:
                        number += 1
                        fail(number, 413, f"line longer than {limit} bytes")
                        skipping = True
                    if skipping:
                        buffer.clear()
                    break
                line, start = bytes(buffer[start:end]), end + 1
                if skipping:
                    skipping = False
                    continue
                number += 1
                _bulk_line(number, line, batch, fail)
                batch_bytes += len(line)
                if len(batch) >= BULK_BATCH or (batch and batch_bytes >= BULK_BATCH_BYTES):
                    await flush()
                if number % STEP_LINES == 0:
                    await asyncio.sleep(0)  # let the writes go on while parsing
        if buffer.strip() and not skipping:
            number += 1
            _bulk_line(number, bytes(buffer), batch, fail)
        if batch:
            await flush()
        if writing is not None:
            await writing
        if stored:
            await store.settle_import()
    finally:
        for task in (older, writing):
            if task is not None and not task.done():
                task.cancel()
    return b"".join(answer for _, answer in sorted(out))


def _bulk_answer(line: int, status: int, **fields: Any) -> tuple[int, bytes]:
    """A BulkResult line (same fields, same order), without a model per line."""
    return line, orjson.dumps({"line": line, "status": status, **fields}) + b"\n"


def _bulk_line(number: int, line: bytes, batch: list[tuple[int, DocumentCreate]],
               fail: Callable[[int, int, str], None]) -> None:
    if not line.strip():
        return
    try:
        item = DocumentCreate.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        fail(number, 422, f"{where}: {first['msg']}")
        return
    if item.format in BINARY_FORMATS:
        fail(number, 422, f"format {item.format!r} is binary; upload it as a file")
        return
    batch.append((number, item))
