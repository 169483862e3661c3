"""The log-collector's domain: store events and log records idempotently, query them,
count them, follow one correlation id across services, and enforce retention."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, CursorResult, Select, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import Event
from llmdocs.core.ids import new_id
from llmdocs.core.sqlite import in_thread
from llmdocs.services.logcollector.errors import BadCursor, NothingRecorded
from llmdocs.services.logcollector.models import CollectedEvent, CollectedLog
from llmdocs.services.logcollector.schemas import (
    Correlation,
    EventOut,
    LogIn,
    LogOut,
    TimelineEntry,
    WindowStats,
)
from llmdocs.services.logcollector.settings import LogCollectorSettings

if TYPE_CHECKING:  # the audit trail's store builds on this module
    from llmdocs.services.logcollector.audit import AuditStore

log = structlog.get_logger(__name__)
MAX_TIMELINE = 5000
Model = type[CollectedLog] | type[CollectedEvent]
Record = TypeVar("Record", bound=BaseModel)


@dataclass
class Query:
    """Filters shared by logs and events; each applies only where the table has it."""

    service: str | None = None
    levels: Sequence[str] = ()
    types: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None
    text: str | None = None
    cursor: str | None = None
    limit: int = 100
    # the spaces whose events the reader sees, with those about no space (None: all)
    spaces: frozenset[str] | None = None


@dataclass(frozen=True)
class Tail:
    """How a live tail polls, and when it ends (see `LogStore.follow`)."""

    poll: float
    idle: float
    lifetime: float


def _like(text: str) -> str:
    """A LIKE pattern matching `text` literally anywhere (works alike on both databases)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _encode_cursor(time: datetime, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{time.isoformat()}|{seq}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        time, seq = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(time), int(seq)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("The cursor is not valid; pass back a next_cursor unchanged.",
                        [{"field": "query.cursor", "message": "not a cursor"}]) from None


def service_of(source: str) -> str:
    """`llmdocs/docstore` → `docstore`; any other source is its own service name."""
    return source.removeprefix("llmdocs/")[:100]


def valid_records(event: Event, model: type[Record]) -> list[Record]:
    """The valid `data.records` of a batch event: one bad record costs only itself."""
    records = event.data.get("records")
    kept = []
    for record in records if isinstance(records, list) else ():
        try:
            kept.append(model.model_validate(record))
        except ValidationError:
            continue
    return kept


def shipped_records(event: Event) -> list[LogIn]:
    """The valid records of a batch the services shipped."""
    return valid_records(event, LogIn)


def log_out(row: CollectedLog) -> LogOut:
    return LogOut(seq=row.seq, id=row.id, time=row.time, service=row.service, level=row.level,
                  logger=row.logger, message=row.message, correlation_id=row.correlation_id,
                  trace_id=row.trace_id, attributes=json.loads(row.attributes))


def event_out(row: CollectedEvent) -> EventOut:
    envelope = json.loads(row.envelope)
    return EventOut(seq=row.seq, id=row.event_id, type=row.type, source=row.source,
                    service=row.service, subject=row.subject, time=row.time,
                    correlation_id=row.correlation_id, space=row.space,
                    trace_id=trace_id_of(envelope.get("traceparent")),
                    data=envelope.get("data") or {})


def trace_id_of(traceparent: Any) -> str | None:
    """The trace id of a W3C `traceparent` (version-traceid-spanid-flags)."""
    parts = traceparent.split("-") if isinstance(traceparent, str) else []
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


class LogStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._postgres = database.dialect == "postgresql"

    def _insert_ignoring_duplicates(self, model: Model) -> Any:
        insert = postgresql.insert(model) if self._postgres else sqlite.insert(model)
        return insert.on_conflict_do_nothing()

    async def _insert(self, model: Model, rows: list[dict[str, Any]]) -> int:
        """Insert, skipping ids already stored; returns how many were new."""
        if not rows:
            return 0
        # a Core connection, not an ORM session: ingest is the hot path
        async with self.database.engine.begin() as conn:
            result = await conn.execute(
                self._insert_ignoring_duplicates(model).returning(model.seq), rows)
            return len(result.all())

    # --- ingest -------------------------------------------------------------------

    async def add_shipped(self, batches: Sequence[Event]) -> int:
        """Store the records of batches the services shipped (see llmdocs.core.logship)."""
        for batch in batches:
            if batch.data.get("dropped"):  # the sender's queue was full
                log.warning("log records dropped before shipping",
                            service=service_of(batch.source), count=batch.data["dropped"])
        return await self.add_logs([r for b in batches for r in shipped_records(b)])

    async def add_events(self, events: Sequence[Event]) -> int:
        now = utcnow()
        return await self._insert(CollectedEvent, [{
            "event_id": e.id, "type": e.type, "source": e.source[:200],
            "service": service_of(e.source), "subject": (e.subject or None) and e.subject[:500],
            "time": e.time, "correlation_id": e.correlationid and e.correlationid[:128],
            "space": e.space and e.space[:63],
            "envelope": e.model_dump_json(), "received_at": now} for e in events])

    async def add_logs(self, records: Sequence[LogIn]) -> int:
        now = utcnow()
        return await self._insert(CollectedLog, [{
            "id": r.id or new_id(), "time": r.time, "service": r.service, "level": r.level,
            "logger": r.logger, "message": r.message, "correlation_id": r.correlation_id,
            "trace_id": r.trace_id, "attributes": json.dumps(r.attributes, default=str),
            "received_at": now} for r in records])

    # --- queries ------------------------------------------------------------------

    def _where(self, model: Model, q: Query) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if q.service:
            where.append(model.service == q.service)
        if q.since:
            where.append(model.time >= q.since)
        if q.until:
            where.append(model.time < q.until)
        if q.correlation_id:
            where.append(model.correlation_id == q.correlation_id)
        if model is CollectedLog:
            if q.levels:
                where.append(CollectedLog.level.in_(q.levels))
            if q.text:
                where.append(CollectedLog.message.ilike(_like(q.text), escape="\\"))
        else:
            if q.types:
                where.append(CollectedEvent.type.in_(q.types))
            if q.text:
                where.append(CollectedEvent.envelope.ilike(_like(q.text), escape="\\"))
            if q.spaces is not None:
                where.append(or_(CollectedEvent.space.is_(None),
                                 CollectedEvent.space.in_(q.spaces)))
        if q.cursor:
            time, seq = _decode_cursor(q.cursor)
            where.append(or_(model.time < time, and_(model.time == time, model.seq < seq)))
        return where

    async def _page(self, model: Model, q: Query) -> tuple[list[Any], str | None]:
        """Newest first, keyset-paginated on (time, seq)."""
        query: Select[Any] = (select(model).where(*self._where(model, q))
                              .order_by(model.time.desc(), model.seq.desc()).limit(q.limit + 1))
        # a text filter can scan many records: on SQLite, off the event loop
        with in_thread():
            async with self.database.session() as session:
                rows = list((await session.scalars(query)).all())
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        cursor = _encode_cursor(rows[-1].time, rows[-1].seq) if more else None
        return rows, cursor

    async def logs(self, q: Query) -> tuple[list[LogOut], str | None]:
        rows, cursor = await self._page(CollectedLog, q)
        return [log_out(r) for r in rows], cursor

    async def events(self, q: Query) -> tuple[list[EventOut], str | None]:
        rows, cursor = await self._page(CollectedEvent, q)
        return [event_out(r) for r in rows], cursor

    async def logs_after(self, seq: int, q: Query) -> list[LogOut]:
        """Log records that arrived after `seq`, oldest first: the live tail."""
        query = (select(CollectedLog)
                 .where(CollectedLog.seq > seq, *self._where(CollectedLog, q))
                 .order_by(CollectedLog.seq).limit(q.limit))
        async with self.database.session() as session:
            return [log_out(r) for r in await session.scalars(query)]

    async def last_log_seq(self) -> int:
        async with self.database.session() as session:
            return int(await session.scalar(select(func.max(CollectedLog.seq))) or 0)

    async def follow(self, after: int, q: Query, tail: Tail) -> AsyncIterator[LogOut]:
        """Log records after `after` as they arrive, until none came for `tail.idle`
        seconds or the stream has lasted `tail.lifetime`: a live tail ends by itself, so
        a reader that went away unnoticed holds nothing for long; one that is still
        there goes on after the last record it got."""
        clock = asyncio.get_running_loop().time
        ends = clock() + tail.lifetime
        quiet_ends = clock() + tail.idle
        while (now := clock()) < min(ends, quiet_ends):
            records = await self.logs_after(after, q)
            for record in records:
                after = record.seq
                yield record
            if records:
                quiet_ends = clock() + tail.idle
            else:
                await asyncio.sleep(min(tail.poll, ends - now, quiet_ends - now))

    async def _counts(self, column: Any, model: Model, since: datetime) -> dict[str, int]:
        query = select(column, func.count()).where(model.time >= since).group_by(column)
        with in_thread():  # counts every record of the window
            async with self.database.session() as session:
                rows = (await session.execute(query)).all()
        return {str(key): int(count) for key, count in rows}

    async def stats(self, windows: Sequence[tuple[str, timedelta]]) -> list[WindowStats]:
        now = utcnow()
        out = []
        for label, span in windows:
            since = now - span
            out.append(WindowStats(
                window=label, since=since,
                logs_by_service=await self._counts(CollectedLog.service, CollectedLog, since),
                logs_by_level=await self._counts(CollectedLog.level, CollectedLog, since),
                events_by_type=await self._counts(CollectedEvent.type, CollectedEvent, since),
                events_by_service=await self._counts(CollectedEvent.service, CollectedEvent,
                                                     since)))
        return out

    async def correlation(self, correlation_id: str, spaces: frozenset[str] | None = None,
                          with_logs: bool = True) -> Correlation:
        """Everything one request caused, across services, in time order: the events a
        member of `spaces` sees (None: all), and the log records when `with_logs`."""
        q = Query(correlation_id=correlation_id, spaces=spaces)
        logs_q = (select(CollectedLog).where(CollectedLog.correlation_id == correlation_id)
                  .order_by(CollectedLog.time, CollectedLog.seq).limit(MAX_TIMELINE + 1))
        events_q = (select(CollectedEvent).where(*self._where(CollectedEvent, q))
                    .order_by(CollectedEvent.time, CollectedEvent.seq).limit(MAX_TIMELINE + 1))
        async with self.database.session() as session:
            logs = list(await session.scalars(logs_q)) if with_logs else []
            events = list(await session.scalars(events_q))
        timeline = [TimelineEntry(kind="log", time=r.time, service=r.service,
                                  summary=r.message[:200], record=log_out(r)) for r in logs]
        timeline += [TimelineEntry(kind="event", time=r.time, service=r.service,
                                   summary=r.type, record=event_out(r)) for r in events]
        timeline.sort(key=lambda entry: entry.time)
        truncated = len(timeline) > MAX_TIMELINE
        timeline = timeline[:MAX_TIMELINE]
        if not timeline:
            raise NothingRecorded(f"Nothing is recorded for correlation id {correlation_id!r}.")
        traces = {entry.record.trace_id for entry in timeline if entry.record.trace_id}
        return Correlation(correlation_id=correlation_id, count=len(timeline),
                           truncated=truncated, timeline=timeline,
                           trace_ids=sorted(traces),
                           services=sorted({entry.service for entry in timeline}))

    # --- retention ----------------------------------------------------------------

    async def _trim(self, model: Model, oldest: datetime, keep: int) -> int:
        with in_thread():  # may delete many records: on SQLite, off the event loop
            async with self.database.transaction() as session:
                aged = await session.execute(delete(model).where(model.time < oldest))
                removed = cast(CursorResult[Any], aged).rowcount
                cut = await session.scalar(select(model.seq).order_by(model.seq.desc())
                                           .offset(keep).limit(1))
                if cut is not None:
                    sized = await session.execute(delete(model).where(model.seq <= cut))
                    removed += cast(CursorResult[Any], sized).rowcount
        return removed

    async def retain(self, config: LogCollectorSettings, audit: AuditStore
                     ) -> dict[str, int]:
        """Apply the configured retention, the audit trail's too: periodically, and
        when an admin asks."""
        events_days = config.event_retention_days or config.retention_days
        removed = await self.enforce_retention(
            timedelta(days=config.retention_days), config.max_logs, config.max_events,
            events_max_age=timedelta(days=events_days))
        removed["audit"] = await audit.enforce_retention(
            timedelta(days=config.audit_retention_days))
        return removed

    async def enforce_retention(self, max_age: timedelta, max_logs: int, max_events: int,
                                events_max_age: timedelta | None = None) -> dict[str, int]:
        """Delete records older than `max_age` (events: `events_max_age`, when given),
        then the oldest beyond the size caps."""
        now = utcnow()
        return {"logs": await self._trim(CollectedLog, now - max_age, max_logs),
                "events": await self._trim(CollectedEvent,
                                           now - (events_max_age or max_age), max_events)}
