"""The event bus on SQL tables: the embedded default (SQLite, same file as everything
else) and a Redis-less option on PostgreSQL (how claims serialise: docs/internals.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import (
    DateTime,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from llmdocs.core.config import Settings
from llmdocs.core.db import Base, Database, RowFields, json_param, json_rows, utcnow
from llmdocs.core.events.base import Delivery, StartAt, positions_by_group
from llmdocs.core.events.envelope import Event
from llmdocs.core.events.models import DeadLetter, EventRecord, GroupCursor, PendingDelivery
from llmdocs.core.events.spool import Outgoing, SpoolingEventBus
from llmdocs.core.sqlite import in_thread

log = structlog.get_logger(__name__)

APPEND_LOCK_ID = 7_411_901  # pg advisory lock: appends commit in position order
POLL_SECONDS = 0.05  # how often a blocked read looks for events other processes wrote
TRIM_SECONDS = 60.0  # the most often a publishing process trims old events

E, C, P, D = EventRecord, GroupCursor, PendingDelivery, DeadLetter
EVENTS = cast(Table, EventRecord.__table__)
EVENT_ROW: RowFields = {"event_id": "event_id", "stream": "stream", "type": "type",
                        "envelope": "envelope",
                        "created_at": bindparam("now", type_=DateTime(timezone=True))}


class SqlEventBus(SpoolingEventBus):
    kind = "sql"

    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(settings)
        self.database = database
        self._postgres = database.dialect == "postgresql"
        self._cursors: set[tuple[str, str]] = set()
        self._published = asyncio.Event()  # wakes this process's blocked readers at once
        retention = settings.event_retention_seconds
        self._trim_every = min(TRIM_SECONDS, retention / 10) if retention else None
        self._trim_at = 0.0  # monotonic time of the next trim
        columns, rows = json_rows(database.dialect, EVENTS, EVENT_ROW)
        # built once: constructing it costs more Python than running it for one event
        self._append_stmt = (self._upsert(EVENTS).from_select(columns, rows)
                             .on_conflict_do_nothing())

    def _upsert(self, target: type[Base] | Table) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(target) if self._postgres else sqlite.insert(target)

    @asynccontextmanager
    async def transaction(self, database: Database
                          ) -> AsyncIterator[tuple[AsyncConnection, list[Event]]]:
        """On the bus's own database the outbox's events are rows of the transaction
        itself (a transactional outbox): they commit with the writes they announce, in
        the same round trip, and readers are woken once they are visible."""
        if database.engine is not self.database.engine:
            async with super().transaction(database) as opened:
                yield opened
            return
        outbox: list[Event] = []
        async with database.engine.begin() as conn:
            yield conn, outbox
            if outbox:  # the transaction's last statement: PostgreSQL's turn is short
                await self._insert(conn, [Outgoing.of(e, self.stream) for e in outbox])
        if outbox:
            self._wake()

    async def _insert(self, conn: AsyncConnection, items: Sequence[Outgoing]) -> None:
        """Insert the batch as one JSON value (see `json_rows`: no per-row work in
        Python); an event id already stored (a re-sent spool) is skipped.
        On PostgreSQL appends take turns, so a position becomes visible only after
        every smaller one: a reader never moves its cursor past a gap that later fills."""
        rows = json_param([{"event_id": item.event.id, "stream": item.stream,
                            "type": item.event.type, "envelope": item.body}
                           for item in items])
        if self._postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": APPEND_LOCK_ID})
        await conn.execute(self._append_stmt, {"rows": rows, "now": utcnow()})

    def _wake(self) -> None:
        """Readers of this process waiting for events look again."""
        self._published.set()
        self._published = asyncio.Event()

    async def _append(self, items: Sequence[Outgoing]) -> None:
        async with self.database.engine.begin() as conn:
            await self._insert(conn, items)
        self._wake()
        if self._trim_every is not None and time.monotonic() >= self._trim_at:
            self._trim_at = time.monotonic() + self._trim_every
            await self._trim()

    async def _trim(self) -> None:
        """Delete events older than the retention, oldest first, except those a group
        still owes an ack for or has dead-lettered. Positions follow append order, so the
        first event young enough to keep bounds the scan."""
        cutoff = utcnow() - timedelta(seconds=self.settings.event_retention_seconds)
        first_kept = (select(E.position).where(E.created_at >= cutoff)
                      .order_by(E.position).limit(1).scalar_subquery())
        past_end = select(func.max(E.position) + 1).scalar_subquery()
        try:  # may delete many rows: on SQLite, off the event loop
            with in_thread():
                async with self.database.transaction() as session:
                    await session.execute(
                        delete(E).where(E.position < func.coalesce(first_kept, past_end),
                                        E.position.not_in(select(P.position)),
                                        E.position.not_in(select(D.position)))
                        .execution_options(synchronize_session=False))
        except SQLAlchemyError:  # the events are stored; trimming waits for the next turn
            log.warning("event trim failed", exc_info=True)

    async def read(
        self,
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        stream: str | None = None,
        start_at: StartAt = "earliest",
    ) -> list[Delivery]:
        stream = stream or self.stream
        await self._ensure_cursor(group, stream, start_at)
        deadline = time.monotonic() + block_ms / 1000
        while True:
            published = self._published
            deliveries = await self._claim(group, consumer, stream, count)
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0:
                return deliveries
            try:
                async with asyncio.timeout(min(POLL_SECONDS, remaining)):
                    await published.wait()
            except TimeoutError:
                pass

    async def _ensure_cursor(self, group: str, stream: str, start_at: StartAt) -> None:
        if (group, stream) in self._cursors:
            return
        start: Any = 0
        if start_at == "latest":
            start = (select(func.coalesce(func.max(E.position), 0))
                     .where(E.stream == stream).scalar_subquery())
        async with self.database.transaction() as session:
            await session.execute(self._upsert(GroupCursor)
                                  .values(group_name=group, stream=stream, position=start)
                                  .on_conflict_do_nothing())
        self._cursors.add((group, stream))

    async def _claim(self, group: str, consumer: str, stream: str,
                     count: int) -> list[Delivery]:
        now = utcnow()
        cutoff = now - timedelta(seconds=self.settings.event_redelivery_seconds)
        async with self.database.transaction() as session:
            if not await self._has_work(session, group, stream, cutoff):
                return []  # a cheap read: idle polling never takes the write lock
            again, dead = await self._reclaim(session, group, consumer, stream, count, now,
                                              cutoff)
            fresh = []
            if len(again) < count:
                fresh = await self._take_new(session, group, consumer, stream,
                                             count - len(again), now)
            claimed = again + fresh
            envelopes = dict((await session.execute(
                select(E.position, E.envelope)
                .where(E.position.in_([p for p, _ in claimed] + dead))
            )).all()) if claimed or dead else {}
        if dead:  # announced once they are recorded: the claim has committed
            await self.announce_dead(group, stream, [
                Delivery(Event.model_validate_json(envelopes[position]), str(position),
                         group, self.settings.event_max_deliveries) for position in dead])
        return [Delivery(Event.model_validate_json(envelopes[position]), str(position),
                         group, attempt) for position, attempt in claimed]

    async def _has_work(self, session: AsyncSession, group: str, stream: str,
                        cutoff: datetime) -> bool:
        cursor = (select(C.position).where(C.group_name == group, C.stream == stream)
                  .scalar_subquery())
        due = exists().where(P.group_name == group, P.stream == stream,
                             P.delivered_at < cutoff)
        new = exists().where(E.stream == stream, E.position > cursor)
        return bool((await session.execute(select(or_(due, new)))).scalar())

    async def _reclaim(self, session: AsyncSession, group: str, consumer: str, stream: str,
                       count: int, now: datetime, cutoff: datetime
                       ) -> tuple[list[tuple[int, int]], list[int]]:
        """Take over deliveries whose ack timed out; those delivered `max_deliveries`
        times already become dead letters instead (their positions come second)."""
        due = (select(P.position)
               .where(P.group_name == group, P.stream == stream, P.delivered_at < cutoff)
               .order_by(P.position).limit(count).with_for_update(skip_locked=True))
        rows = (await session.execute(
            update(P).where(P.group_name == group, P.position.in_(due))
            .values(consumer=consumer, delivered_at=now, attempts=P.attempts + 1)
            .returning(P.position, P.attempts)
            .execution_options(synchronize_session=False)
        )).all()
        limit = self.settings.event_max_deliveries
        dead = [position for position, attempts in rows if attempts > limit]
        if dead:
            await session.execute(insert(DeadLetter), [
                {"group_name": group, "stream": stream, "position": position,
                 "consumer": consumer, "attempts": limit, "dead_at": now}
                for position in sorted(dead)])
            await session.execute(
                delete(P).where(P.group_name == group, P.position.in_(dead))
                .execution_options(synchronize_session=False))
        return (sorted((position, attempts) for position, attempts in rows
                       if attempts <= limit), sorted(dead))

    async def _take_new(self, session: AsyncSession, group: str, consumer: str, stream: str,
                        count: int, now: datetime) -> list[tuple[int, int]]:
        """Advance the group's cursor over the next events and record them as pending."""
        where = (C.group_name == group, C.stream == stream)
        if self._postgres:  # another consumer holding the cursor is taking these now
            lock: Any = select(C.position).where(*where).with_for_update(skip_locked=True)
        else:  # a write: the transaction holds SQLite's write lock from here (if not yet)
            lock = update(C).where(*where).values(position=C.position).returning(C.position)
        cursor = (await session.execute(lock)).scalar_one_or_none()
        if cursor is None:
            return []
        positions = list((await session.scalars(
            select(E.position).where(E.stream == stream, E.position > cursor)
            .order_by(E.position).limit(count)
        )).all())
        if positions:
            await session.execute(insert(PendingDelivery), [
                {"group_name": group, "position": position, "stream": stream,
                 "consumer": consumer, "delivered_at": now, "attempts": 1}
                for position in positions])
            await session.execute(update(C).where(*where).values(position=positions[-1]))
        return [(position, 1) for position in positions]

    async def ack(self, deliveries: Sequence[Delivery], stream: str | None = None) -> None:
        if not deliveries:
            return
        async with self.database.transaction() as session:
            for group, positions in positions_by_group(deliveries).items():
                await session.execute(
                    delete(P).where(P.group_name == group,
                                    P.position.in_([int(p) for p in positions]))
                    .execution_options(synchronize_session=False))

    async def dead_letters(
        self, group: str, *, limit: int = 100, stream: str | None = None
    ) -> list[Delivery]:
        query = (select(D.position, D.attempts, E.envelope)
                 .join(E, E.position == D.position)
                 .where(D.group_name == group, D.stream == (stream or self.stream))
                 .order_by(D.id).limit(limit))
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [Delivery(Event.model_validate_json(envelope), str(position), group, attempts)
                for position, attempts, envelope in rows]

    async def replay(
        self, after: str | None = None, *, limit: int = 100, stream: str | None = None
    ) -> list[tuple[str, Event]]:
        query = (select(E.position, E.envelope)
                 .where(E.stream == (stream or self.stream), E.position > int(after or 0))
                 .order_by(E.position).limit(limit))
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [(str(position), Event.model_validate_json(envelope)) for position, envelope in rows]

    async def ping(self) -> float:
        return await self.database.ping()

    async def forget(self, text: str, streams: Sequence[str]) -> int:
        """Pending deliveries and dead letters of the events go with them (cascade)."""
        with in_thread():  # scans every stored envelope
            async with self.database.transaction() as session:
                result = await session.execute(
                    delete(E).where(E.stream.in_(streams),
                                    E.envelope.contains(text, autoescape=True))
                    .execution_options(synchronize_session=False))
        return int(cast(Any, result).rowcount)
