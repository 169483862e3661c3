"""The EventBus interface every backend implements, and the one consumer loop
(`subscribe`) built on its `read`/`ack` so both backends share it."""

from __future__ import annotations

import abc
import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from llmdocs.core.events.envelope import Event
from llmdocs.core.ids import new_id
from llmdocs.core.middleware import correlation_id_var

if TYPE_CHECKING:
    from llmdocs.core.db import Database

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]
StartAt = Literal["earliest", "latest"]

log = structlog.get_logger("llmdocs.events")

READ_RETRY_SECONDS = 1.0  # pause after a failed read, so a down backend is not hammered
READ_COUNT = 100  # events claimed per read at most
# after a read that did not fill a batch, the consumer waits this long before the next:
# a burst of events is then claimed and acked in one round-trip each, not per event
# (on SQLite every claim and ack takes the write lock the publishers need too)
LINGER_SECONDS = 0.05
# announces each event a group gave up on, so someone hears of it (the notification
# service's rule); one about an announcement is not announced again: no loop
DEAD_LETTERED = "llmdocs.event.dead_lettered"


@dataclass(frozen=True)
class Delivery:
    """One event handed to one consumer of a group."""

    event: Event
    position: str  # the backend's position of the event in its stream
    group: str
    attempt: int  # 1 on first delivery, then counts redeliveries


def positions_by_group(deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
    """Acks go per group; one call may carry several groups' deliveries."""
    groups: dict[str, list[str]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.group, []).append(delivery.position)
    return groups


class Subscription(abc.ABC):
    """A running consumer loop; `stop()` ends it after the batch in hand."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


def default_consumer_name() -> str:
    """Unique per process and subscription: a consumer that dies must not be confused
    with its replacement, or its unacked events would never time out to another."""
    return f"{socket.gethostname()}-{os.getpid()}-{new_id()[-8:]}"


class EventBus(abc.ABC):
    """Publish never raises: if the backend is unreachable the event is spooled to
    a local file and delivered when the backend is back."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, event: Event, stream: str | None = None) -> None: ...

    @abc.abstractmethod
    async def publish_many(self, events: Sequence[Event], stream: str | None = None) -> None: ...

    @asynccontextmanager
    async def transaction(self, database: Database
                          ) -> AsyncIterator[tuple[AsyncConnection, list[Event]]]:
        """A transaction on `database`, and a list (an outbox) for the events that
        announce its writes: they are published once it commits, and never if it rolls
        back."""
        outbox: list[Event] = []
        async with database.engine.begin() as conn:
            yield conn, outbox
        await self.publish_many(outbox)

    @abc.abstractmethod
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
        """Events for this consumer: first those whose delivery timed out unacked
        (redelivery), then new ones. An event delivered `max_deliveries` times without
        an ack goes to the dead-letter stream instead."""

    @abc.abstractmethod
    async def ack(self, deliveries: Sequence[Delivery], stream: str | None = None) -> None: ...

    async def announce_dead(self, group: str, stream: str, dead: Sequence[Delivery]) -> None:
        """Publish a `DEAD_LETTERED` event for each event `group` has just given up on."""
        await self.publish_many([
            Event(source="llmdocs/events", type=DEAD_LETTERED, subject=group,
                  correlationid=d.event.correlationid, data={
                      "group": group, "stream": stream, "position": d.position,
                      "attempts": d.attempt, "event_id": d.event.id,
                      "event_type": d.event.type, "event_subject": d.event.subject})
            for d in dead if d.event.type != DEAD_LETTERED])

    @abc.abstractmethod
    async def dead_letters(
        self, group: str, *, limit: int = 100, stream: str | None = None
    ) -> list[Delivery]:
        """Events the group gave up on, oldest first; `attempt` is how often each was
        delivered."""

    @abc.abstractmethod
    async def replay(
        self, after: str | None = None, *, limit: int = 100, stream: str | None = None
    ) -> list[tuple[str, Event]]:
        """Events in stream order after a position (from the start when None)."""

    @abc.abstractmethod
    async def ping(self) -> float:
        """Round-trip to the backend in milliseconds; raises when unreachable."""

    @abc.abstractmethod
    async def forget(self, text: str, streams: Sequence[str]) -> int:
        """Delete every event of `streams` whose envelope holds `text` (an erased
        person's name), delivered or not, with its dead letters; how many went."""

    def subscribe(
        self,
        group: str,
        handler: Handler,
        *,
        consumer: str | None = None,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        linger: float = LINGER_SECONDS,
    ) -> Subscription:
        """Run `handler` for every event of the group (filtered by type), as a task until
        `stop()`; ack on success, leave unacked on error so it is redelivered."""
        # after a partial batch the loop waits `linger` seconds, so a burst is claimed in
        # one read (a consumer that may lag, like analytics, lingers longer and takes the
        # write lock less often)
        async def one_by_one(events: list[Event]) -> None:
            for event in events:
                await handler(event)

        return _ConsumerLoop(self, group, one_by_one, consumer or default_consumer_name(),
                             frozenset(types) if types is not None else None, stream,
                             batched=False, linger=linger)

    def subscribe_batch(
        self,
        group: str,
        handler: BatchHandler,
        *,
        consumer: str | None = None,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        linger: float = LINGER_SECONDS,
    ) -> Subscription:
        """Like `subscribe`, but `handler` takes each read's events at once (one
        transaction for a whole batch). If it fails, the events are retried one by one,
        so a single bad event cannot hold back the good ones."""
        return _ConsumerLoop(self, group, handler, consumer or default_consumer_name(),
                             frozenset(types) if types is not None else None, stream,
                             batched=True, linger=linger)


class _ConsumerLoop(Subscription):
    """read → handle (the whole batch, or each event) → ack the handled ones, until
    stopped. Events of types the subscriber does not want are acked unseen."""

    def __init__(self, bus: EventBus, group: str, handler: BatchHandler, consumer: str,
                 types: frozenset[str] | None, stream: str | None, *, batched: bool,
                 linger: float) -> None:
        self.bus = bus
        self.batched = batched
        self.linger = linger
        self.group = group
        self.handler = handler
        self.consumer = consumer
        self.types = types
        self.stream = stream
        self._stopping = False
        self._waiting = False
        self._task = asyncio.create_task(self._run(), name=f"events:{group}:{consumer}")

    async def stop(self) -> None:
        """Cancel a read that is waiting for events; let a batch being handled finish
        and be acked first, so stopping does not cause needless redeliveries."""
        self._stopping = True
        if self._waiting:
            self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        log.info("subscription started", group=self.group, consumer=self.consumer)
        while not self._stopping:
            self._waiting = True
            try:
                deliveries = await self._read()
            finally:
                self._waiting = False
            handled = await self._handle(deliveries) if deliveries else []
            if handled:
                try:
                    await self.bus.ack(handled, stream=self.stream)
                except Exception as exc:  # they will be redelivered: at least once
                    log.warning("event ack failed", group=self.group, error=repr(exc))
            if deliveries and len(deliveries) < READ_COUNT and not self._stopping:
                self._waiting = True
                try:
                    await asyncio.sleep(self.linger)
                finally:
                    self._waiting = False
        log.info("subscription stopped", group=self.group, consumer=self.consumer)

    async def _read(self) -> list[Delivery]:
        try:
            return await self.bus.read(self.group, self.consumer, count=READ_COUNT,
                                       stream=self.stream)
        except Exception as exc:
            log.warning("event read failed", group=self.group, error=repr(exc))
            await asyncio.sleep(READ_RETRY_SECONDS)
            return []

    async def _handle(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries that may be acked: unwanted types, and those handled."""
        wanted: list[Delivery] = []
        unwanted: list[Delivery] = []
        for d in deliveries:  # one pass: comparing deliveries would compare whole events
            wanted_type = self.types is None or d.event.type in self.types
            (wanted if wanted_type else unwanted).append(d)
        if self.batched and len(wanted) > 1 and await self._call(wanted):
            return deliveries
        return unwanted + [d for d in wanted if await self._call([d])]

    async def _call(self, deliveries: list[Delivery]) -> bool:
        """Run the handler; True on success. A single event's correlation id becomes the
        current one, so the handler's logs and the events it publishes carry it on."""
        first = deliveries[0].event
        correlation_id = first.correlationid if len(deliveries) == 1 else None
        token = correlation_id_var.set(correlation_id)
        try:
            with structlog.contextvars.bound_contextvars(
                correlation_id=correlation_id, event_id=first.id, event_type=first.type
            ):
                try:
                    await self.handler([d.event for d in deliveries])
                except Exception:
                    log.exception("event handler failed", group=self.group,
                                  events=len(deliveries), attempt=deliveries[0].attempt)
                    return False
                return True
        finally:
            correlation_id_var.reset(token)
