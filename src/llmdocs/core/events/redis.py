"""The event bus on Redis Streams: the distributed backend (entries, groups,
redelivery and dead letters: docs/internals.md)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from llmdocs.core.config import Settings
from llmdocs.core.events.base import Delivery, StartAt, positions_by_group
from llmdocs.core.events.envelope import Event
from llmdocs.core.events.spool import Outgoing, SpoolingEventBus

log = structlog.get_logger("llmdocs.events")

SOCKET_TIMEOUT_SECONDS = 2.0  # a command that takes longer means Redis is in trouble
CONNECT_TIMEOUT_SECONDS = 1.0
DEAD_LETTER_SCAN = 500  # entries read per XRANGE when looking for a group's dead letters

Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields)
StreamReply = list[tuple[bytes, list[Entry]]] | None  # XREADGROUP: entries per stream


def _client(url: str, socket_timeout: float | None) -> Redis:
    """No retries inside redis-py: a failed publish goes to the spool at once, and a
    failed read is retried by the consumer loop."""
    return Redis.from_url(url, socket_timeout=socket_timeout,
                          socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                          retry=Retry(NoBackoff(), 0))


class RedisEventBus(SpoolingEventBus):
    kind = "redis"

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(settings)
        self.url = url
        self._redis = _client(url, SOCKET_TIMEOUT_SECONDS)
        self._blocking = _client(url, None)  # XREADGROUP BLOCK waits as long as asked
        self._groups: set[tuple[str, str]] = set()
        self._claim_from: dict[tuple[str, str], bytes] = {}  # XAUTOCLAIM cursors

    async def close(self) -> None:
        await super().close()
        await self._redis.aclose()
        await self._blocking.aclose()

    async def _append(self, items: Sequence[Outgoing]) -> None:
        # entry ids are milliseconds: each add drops the entries older than the retention
        # (exact, so the stream's head is checked, not a whole macro node at a time)
        retention_ms = int(self.settings.event_retention_seconds * 1000)
        minid = int(time.time() * 1000) - retention_ms if retention_ms else None
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(item.stream, {"event": item.body}, minid=minid, approximate=False)
            await pipe.execute()

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
        try:
            return await self._read(group, consumer, stream, count, block_ms, start_at)
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            # Redis lost the group (restarted without persistence): make it again
            self._groups.discard((stream, group))
            return await self._read(group, consumer, stream, count, block_ms, start_at)

    async def _read(self, group: str, consumer: str, stream: str, count: int,
                    block_ms: int, start_at: StartAt) -> list[Delivery]:
        await self._ensure_group(stream, group, start_at)
        deadline = time.monotonic() + block_ms / 1000
        redelivery_ms = int(self.settings.event_redelivery_seconds * 1000)
        while True:
            deliveries = await self._reclaim(stream, group, consumer, count)
            wait_ms = int((deadline - time.monotonic()) * 1000)
            # wait for new events, but not past the time unacked ones may fall due
            block = max(1, min(wait_ms, redelivery_ms)) if wait_ms > 0 else None
            if len(deliveries) < count:
                reply = cast(StreamReply, await self._blocking.xreadgroup(
                    group, consumer, {stream: ">"}, count=count - len(deliveries),
                    block=None if deliveries else block))
                for _, entries in reply or ():
                    deliveries += [_delivery(entry, group, 1) for entry in entries]
            if deliveries or block is None:
                return deliveries

    async def _ensure_group(self, stream: str, group: str, start_at: StartAt) -> None:
        if (stream, group) in self._groups:
            return
        try:
            await self._redis.xgroup_create(stream, group, id="0" if start_at == "earliest"
                                            else "$", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        self._groups.add((stream, group))

    async def _reclaim(self, stream: str, group: str, consumer: str,
                       count: int) -> list[Delivery]:
        """Take over entries idle past the redelivery timeout; those delivered
        `max_deliveries` times already become dead letters instead."""
        key = (stream, group)
        min_idle = int(self.settings.event_redelivery_seconds * 1000)
        reply = await self._redis.xautoclaim(stream, group, consumer, min_idle,
                                             self._claim_from.get(key, b"0-0"), count=count)
        self._claim_from[key] = reply[0]
        entries: list[Entry] = [entry for entry in reply[1] if entry[1]]  # skip trimmed
        if not entries:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(stream, group, entry_id, entry_id, 1)
            pending = await pipe.execute()
        # XAUTOCLAIM has counted this delivery already
        attempts = [rows[0]["times_delivered"] if rows else 1 for rows in pending]
        live: list[Delivery] = []
        dead: list[Entry] = []
        for entry, attempt in zip(entries, attempts, strict=True):
            if attempt > self.settings.event_max_deliveries:
                dead.append(entry)
            else:
                live.append(_delivery(entry, group, attempt))
        if dead:
            await self._bury(stream, group, consumer, dead)
        return live

    async def _bury(self, stream: str, group: str, consumer: str, dead: list[Entry]) -> None:
        """Copy to `<stream>.dlq` and ack, atomically (MULTI), so none is lost or doubled."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry_id, fields in dead:
                pipe.xadd(f"{stream}.dlq", {
                    "event": fields[b"event"], "group": group, "position": entry_id,
                    "consumer": consumer, "attempts": self.settings.event_max_deliveries,
                })
                pipe.xack(stream, group, entry_id)
            await pipe.execute()
        log.warning("events dead-lettered", group=group, stream=stream,
                    positions=[entry_id.decode() for entry_id, _ in dead])
        await self.announce_dead(group, stream, [
            _delivery(entry, group, self.settings.event_max_deliveries) for entry in dead])

    async def ack(self, deliveries: Sequence[Delivery], stream: str | None = None) -> None:
        if not deliveries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for group, positions in positions_by_group(deliveries).items():
                pipe.xack(stream or self.stream, group, *positions)
            await pipe.execute()

    async def dead_letters(
        self, group: str, *, limit: int = 100, stream: str | None = None
    ) -> list[Delivery]:
        """The dead-letter stream is shared by all groups: scan it for this one's."""
        found: list[Delivery] = []
        start: str | bytes = "-"
        while len(found) < limit:
            entries = cast(list[Entry], await self._redis.xrange(
                f"{stream or self.stream}.dlq", start, "+", count=DEAD_LETTER_SCAN))
            if not entries:
                break
            found += [
                Delivery(Event.model_validate_json(fields[b"event"]),
                         fields[b"position"].decode(), group, int(fields[b"attempts"]))
                for _, fields in entries if fields[b"group"].decode() == group
            ]
            start = b"(" + entries[-1][0]
        return found[:limit]

    async def replay(
        self, after: str | None = None, *, limit: int = 100, stream: str | None = None
    ) -> list[tuple[str, Event]]:
        entries = cast(list[Entry], await self._redis.xrange(
            stream or self.stream, f"({after}" if after else "-", "+", count=limit))
        return [(entry_id.decode(), Event.model_validate_json(fields[b"event"]))
                for entry_id, fields in entries]

    async def ping(self) -> float:
        started = time.perf_counter()
        await self._redis.ping()
        return (time.perf_counter() - started) * 1000

    async def forget(self, text: str, streams: Sequence[str]) -> int:
        """XDEL of each entry naming `text`, in the streams and their dead-letter streams
        (an entry still pending for a group is dropped from its list too)."""
        needle, removed = text.encode(), 0
        for stream in [*streams, *(f"{s}.dlq" for s in streams)]:
            start: str | bytes = "-"
            while True:
                entries = cast(list[Entry], await self._redis.xrange(
                    stream, start, "+", count=DEAD_LETTER_SCAN))
                if not entries:
                    break
                named = [entry_id for entry_id, fields in entries
                         if any(needle in value for value in fields.values())]
                if named:
                    removed += int(await self._redis.xdel(stream, *named))
                start = b"(" + entries[-1][0]
        return removed


def _delivery(entry: Entry, group: str, attempt: int) -> Delivery:
    entry_id, fields = entry
    return Delivery(Event.model_validate_json(fields[b"event"]), entry_id.decode(), group,
                    attempt)
