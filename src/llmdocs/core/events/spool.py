"""Publishing, shared by both backends: concurrent publishes go in one round-trip, and
what the backend cannot take goes to a spool file re-sent in order once it is back, so a
publish never fails a request (docs/internals.md)."""

from __future__ import annotations

import abc
import asyncio
import fcntl
import json
import os
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, ClassVar, NamedTuple

import structlog
from opentelemetry import trace

from llmdocs.core import tracing
from llmdocs.core.config import Settings
from llmdocs.core.events.base import EventBus
from llmdocs.core.events.envelope import Event
from llmdocs.core.ids import new_id

log = structlog.get_logger("llmdocs.events")

SEND_TIMEOUT_SECONDS = 5.0  # a publish waits at most this long before spooling instead
FLUSH_CHUNK = 1000  # spooled events re-sent per backend round-trip


class Outgoing(NamedTuple):
    """An event on its way to a stream, serialised once for backend and spool alike.
    A tuple because one is made per publish: a frozen dataclass costs twice as much."""

    stream: str
    event: Event
    body: str  # the envelope as JSON

    @classmethod
    def of(cls, event: Event, stream: str) -> Outgoing:
        return cls(stream, event, event.model_dump_json())

    def line(self) -> str:
        return f'{{"stream":{json.dumps(self.stream)},"event":{self.body}}}\n'

    @classmethod
    def parse(cls, line: str) -> Outgoing:
        record = json.loads(line)
        return cls.of(Event.model_validate(record["event"]), record["stream"])


class Spool:
    """Events waiting for the backend, in publish order: kept in memory and mirrored
    to this bus's own locked file, so a crash loses nothing that `publish` accepted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: deque[Outgoing] = deque()
        self._path = directory / f"{os.getpid()}-{new_id()}.jsonl"
        self._file: IO[str] | None = None

    @property
    def pending(self) -> int:
        return len(self.entries)

    def open(self) -> None:
        """Create and lock this bus's file, then take over any orphaned ones."""
        if self._file is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = _locked(self._path)
        self.adopt()

    def close(self) -> None:
        """Release the file; keep it only if it still holds events for another bus."""
        if self._file is None:
            return
        if not self.entries:
            self._path.unlink(missing_ok=True)
        self._file.close()  # releases the lock
        self._file = None

    def adopt(self) -> int:
        """Move the events of every unlocked spool file into ours; returns how many."""
        self.open()
        adopted = 0
        for path in sorted(self.directory.glob("*.jsonl"), key=_mtime):
            if path == self._path:
                continue
            try:
                orphan = _locked(path, blocking=False)
            except OSError:  # held by a live bus
                continue
            with orphan:
                if os.fstat(orphan.fileno()).st_nlink == 0:  # another bus adopted it first
                    continue
                entries = _read_entries(orphan)
                self.append(entries)
                path.unlink()
                adopted += len(entries)
        if adopted:
            log.info("adopted spooled events", count=adopted, directory=str(self.directory))
        return adopted

    def append(self, items: Sequence[Outgoing]) -> None:
        own = self._own()
        own.writelines(item.line() for item in items)
        _sync(own)
        self.entries.extend(items)

    def head(self, start: int, limit: int) -> list[Outgoing]:
        """Up to `limit` entries from position `start`, oldest first."""
        return [self.entries[i] for i in range(start, min(start + limit, len(self.entries)))]

    def drop(self, count: int) -> None:
        """Forget the oldest `count` entries, which the backend now has. The rest is
        written to a locked temporary file that atomically replaces ours: a crash at
        any point leaves a whole file behind (at worst re-sending, never losing)."""
        own = self._own()
        for _ in range(count):
            self.entries.popleft()
        if not self.entries:
            own.truncate(0)
            return
        temporary = self._path.with_suffix(".tmp")
        fresh = _locked(temporary)
        fresh.truncate(0)
        fresh.writelines(entry.line() for entry in self.entries)
        _sync(fresh)
        os.replace(temporary, self._path)
        own.close()
        self._file = fresh

    def _own(self) -> IO[str]:
        self.open()
        assert self._file is not None
        return self._file


def _locked(path: Path, *, blocking: bool = True) -> IO[str]:
    """The file opened for appending under an exclusive lock (created if missing)."""
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        handle.close()
        raise
    return handle


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _sync(handle: IO[str]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _read_entries(handle: IO[str]) -> list[Outgoing]:
    """Every whole line; a torn last line from a crash mid-write is skipped."""
    handle.seek(0)
    entries = []
    for number, line in enumerate(handle, 1):
        try:
            entries.append(Outgoing.parse(line))
        except (ValueError, KeyError):
            log.warning("unreadable spool line skipped", file=handle.name, line=number)
    return entries


class SpoolingEventBus(EventBus):
    """The publishing half of a backend: one sender task batches what arrives meanwhile
    (group commit); subclasses provide `_append`, which writes a batch (possibly of
    several streams) in one round-trip, in order, or raises."""

    kind: ClassVar[str]  # names the spool directory, so two backends never swap events

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stream = settings.events_stream
        self.spool = Spool(settings.data_dir / "spool" / self.kind)
        self._queued: list[Outgoing] = []  # to go in the next round-trip
        self._waiting: list[asyncio.Future[None]] = []  # their publishers
        self._sender: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._down_until = 0.0  # monotonic time before which we spool without trying

    @abc.abstractmethod
    async def _append(self, items: Sequence[Outgoing]) -> None: ...

    async def start(self) -> None:
        self.spool.open()
        self._flusher = asyncio.create_task(self._flush_periodically(),
                                            name=f"events:{self.kind}:spool")

    async def close(self) -> None:
        """Finish the publishes in hand and stop the flusher; what the backend has not
        taken stays in the spool file for the next bus to adopt."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        self.spool.close()

    async def publish(self, event: Event, stream: str | None = None) -> None:
        await self.publish_many([event], stream)

    async def publish_many(self, events: Sequence[Event], stream: str | None = None) -> None:
        if not events:
            return
        name = stream or self.stream
        with tracing.span(f"publish {name}", trace.SpanKind.PRODUCER, {
                "messaging.system": self.kind, "messaging.operation.type": "send",
                "messaging.destination.name": name,
                "messaging.batch.message_count": len(events)}, within_trace=True):
            await self._submit([Outgoing.of(event, name) for event in events])

    async def _submit(self, items: list[Outgoing]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queued += items
        self._waiting.append(done)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())
        await done

    async def _send_queued(self) -> None:
        while self._queued:
            items, waiting = self._queued, self._waiting
            self._queued, self._waiting = [], []
            try:
                await self._deliver(items)
            except Exception as exc:  # not even the spool took them (disk full...)
                log.exception("events neither sent nor spooled", backend=self.kind)
                for done in waiting:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for done in waiting:
                if not done.done():
                    done.set_result(None)

    async def _deliver(self, items: list[Outgoing]) -> None:
        if not self.spool.pending and time.monotonic() >= self._down_until:
            try:
                await self._send(items)
                return
            except Exception as exc:
                self._went_down(exc)
        self.spool.append(items)

    async def _send(self, items: Sequence[Outgoing]) -> None:
        async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
            await self._append(items)
        if self._down_until:
            self._down_until = 0.0
            log.info("event backend reachable again", backend=self.kind)

    def _went_down(self, exc: Exception) -> None:
        if not self._down_until:
            log.warning("event backend unreachable, spooling events", backend=self.kind,
                        error=repr(exc))
        self._down_until = time.monotonic() + self.settings.spool_flush_seconds

    async def _flush_spool(self) -> None:
        """Re-send spooled events oldest first; forget only those the backend took."""
        sent = 0
        try:
            while sent < self.spool.pending:
                chunk = self.spool.head(sent, FLUSH_CHUNK)
                await self._send(chunk)
                sent += len(chunk)
        except Exception as exc:
            self._went_down(exc)
        if sent:
            self.spool.drop(sent)
            log.info("spooled events sent", backend=self.kind, count=sent,
                     still_spooled=self.spool.pending)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.spool_flush_seconds)
            try:
                self.spool.adopt()
                if self.spool.pending:
                    await self._flush_spool()
            except Exception:  # keep going: the spool may hold the only copy
                log.exception("spool flush failed", backend=self.kind)
