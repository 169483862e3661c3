"""Spend and rate: atomic budget reservations, per-minute limits, and the recorder that
writes usage rows and `llmdocs.llm.completed` events off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis.asyncio as aioredis
import structlog
from cachetools import TTLCache
from redis.exceptions import RedisError
from sqlalchemy import delete, insert, select, update

from llmdocs.core.cache import Cache
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus
from llmdocs.core.events.envelope import Event
from llmdocs.services.gateway.models import Budget, RateLimit, UsageRecord

log = structlog.get_logger(__name__)

Subject = tuple[str, str]  # (scope, subject): ("user", "user:ann") or ("key", jti)


class BudgetExceeded(Exception):
    def __init__(self, scope: str, subject: str) -> None:
        super().__init__(f"The {scope} budget of {subject!r} does not cover this request.")
        self.scope, self.subject = scope, subject


class RateLimited(Exception):
    def __init__(self, scope: str, what: str, retry_after: int) -> None:
        super().__init__(f"The {scope} {what} limit is reached; retry in {retry_after} s.")
        self.retry_after = retry_after


class Budgets:
    """Reserve the most a call can cost before it runs, settle the real cost after, on
    the same row: one conditional UPDATE, so concurrent calls cannot jointly overshoot
    (at most by how much one call's real cost exceeds its reservation)."""

    def __init__(self, database: Database, cache: Cache, default_usd: float | None) -> None:
        self.database = database
        self.cache = cache
        self.default_micros = None if default_usd is None else round(default_usd * 1e6)

    async def _budgeted(self, subjects: list[Subject]) -> list[Subject]:
        found = []
        for scope, subject in subjects:
            exists = await self.cache.get_or_load(
                f"gw:budget:{scope}:{subject}", partial(self._exists, scope, subject))
            if exists["exists"]:
                found.append((scope, subject))
        return found

    async def _exists(self, scope: str, subject: str) -> dict[str, bool]:
        async with self.database.transaction() as session:
            row = await session.scalar(select(Budget.scope).where(
                Budget.scope == scope, Budget.subject == subject))
            if row is None and scope == "user" and self.default_micros is not None:
                await session.execute(insert(Budget).values(
                    scope=scope, subject=subject, limit_micros=self.default_micros,
                    spent_micros=0, reserved_micros=0, updated_at=utcnow()))
                return {"exists": True}
        return {"exists": row is not None}

    async def reserve(self, subjects: list[Subject], amount: int) -> list[Subject]:
        """Hold `amount` micro-USD on every budget of the subjects, all or none."""
        held = await self._budgeted(subjects)
        if not held:
            return []
        async with self.database.transaction() as session:
            for scope, subject in held:
                result = await session.execute(
                    update(Budget)
                    .where(Budget.scope == scope, Budget.subject == subject,
                           Budget.spent_micros + Budget.reserved_micros + amount
                           <= Budget.limit_micros)
                    .values(reserved_micros=Budget.reserved_micros + amount)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    raise BudgetExceeded(scope, subject)  # rolls back the others
        return held

    async def settle(self, held: list[Subject], reserved: int, spent: int) -> None:
        if not held:
            return
        async with self.database.transaction() as session:
            for scope, subject in held:
                await session.execute(
                    update(Budget)
                    .where(Budget.scope == scope, Budget.subject == subject)
                    .values(reserved_micros=Budget.reserved_micros - reserved,
                            spent_micros=Budget.spent_micros + spent, updated_at=utcnow()))

    async def put(self, scope: str, subject: str, limit_usd: float, reset: bool) -> None:
        limit = round(limit_usd * 1e6)
        async with self.database.transaction() as session:
            values: dict[str, Any] = {"limit_micros": limit, "updated_at": utcnow()}
            if reset:
                values["spent_micros"] = 0
            result = await session.execute(update(Budget).where(
                Budget.scope == scope, Budget.subject == subject).values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                await session.execute(insert(Budget).values(
                    scope=scope, subject=subject, limit_micros=limit, spent_micros=0,
                    reserved_micros=0, updated_at=utcnow()))
        await self.cache.delete(f"gw:budget:{scope}:{subject}")

    async def remove(self, scope: str, subject: str) -> bool:
        async with self.database.transaction() as session:
            result = await session.execute(delete(Budget).where(
                Budget.scope == scope, Budget.subject == subject))
        await self.cache.delete(f"gw:budget:{scope}:{subject}")
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(self) -> list[dict[str, Any]]:
        async with self.database.session() as session:
            rows = (await session.scalars(select(Budget).order_by(
                Budget.scope, Budget.subject))).all()
        return [{"scope": b.scope, "subject": b.subject, "limit_usd": b.limit_micros / 1e6,
                 "spent_usd": b.spent_micros / 1e6, "reserved_usd": b.reserved_micros / 1e6,
                 "updated_at": b.updated_at} for b in rows]


# check every window first, then count the request in all of them: one atomic script
_LIMIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local rpm = tonumber(ARGV[2 * i - 1])
  local tpm = tonumber(ARGV[2 * i])
  local r = tonumber(redis.call('HGET', key, 'r') or '0')
  local t = tonumber(redis.call('HGET', key, 't') or '0')
  if rpm > 0 and r >= rpm then return {i, 1} end
  if tpm > 0 and t >= tpm then return {i, 2} end
end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'r', 1)
  redis.call('EXPIRE', key, 120)
end
return {0, 0}
"""


@dataclass(frozen=True)
class Limit:
    scope: str
    subject: str
    rpm: int | None
    tpm: int | None


class Limiter:
    """Requests and tokens per minute in fixed one-minute windows: in Redis when it is
    configured (shared by every replica), else in this process."""

    def __init__(self, database: Database, cache: Cache, redis_url: str,
                 default_rpm: int | None, default_tpm: int | None) -> None:
        self.database, self.cache = database, cache
        self.defaults = (default_rpm, default_tpm)
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        self._script = self._redis.register_script(_LIMIT_SCRIPT) if self._redis else None
        self._local: TTLCache[str, list[int]] = TTLCache(maxsize=100_000, ttl=120)

    async def limits(self, subjects: list[Subject]) -> list[Limit]:
        found = []
        for scope, subject in subjects:
            row = await self.cache.get_or_load(
                f"gw:limit:{scope}:{subject}", partial(self._load, scope, subject))
            if row["rpm"] or row["tpm"]:
                found.append(Limit(scope, subject, row["rpm"], row["tpm"]))
        return found

    async def _load(self, scope: str, subject: str) -> dict[str, int | None]:
        async with self.database.session() as session:
            row = await session.get(RateLimit, (scope, subject))
        if row is not None:
            return {"rpm": row.rpm, "tpm": row.tpm}
        rpm, tpm = self.defaults if scope == "user" else (None, None)
        return {"rpm": rpm, "tpm": tpm}

    @staticmethod
    def _window(limit: Limit, now: float) -> str:
        return f"llmdocs:gateway:rate:{limit.scope}:{limit.subject}:{int(now // 60)}"

    async def admit(self, limits: list[Limit]) -> None:
        """Count one request, or raise RateLimited without counting it."""
        if not limits:
            return
        now = time.time()
        retry = int(60 - now % 60) + 1
        keys = [self._window(limit, now) for limit in limits]
        if self._script is not None:
            with contextlib.suppress(RedisError, OSError):
                args = [v for limit in limits for v in (limit.rpm or 0, limit.tpm or 0)]
                index, what = await self._script(keys=keys, args=args)
                if index:
                    raise RateLimited(limits[index - 1].scope,
                                      "requests" if what == 1 else "tokens", retry)
                return
        counts = [self._local.setdefault(key, [0, 0]) for key in keys]
        for limit, (requests, tokens) in zip(limits, counts, strict=True):
            if limit.rpm and requests >= limit.rpm:
                raise RateLimited(limit.scope, "requests", retry)
            if limit.tpm and tokens >= limit.tpm:
                raise RateLimited(limit.scope, "tokens", retry)
        for count in counts:
            count[0] += 1

    async def spend(self, limits: list[Limit], tokens: int) -> None:
        if not limits or not tokens:
            return
        keys = [self._window(limit, time.time()) for limit in limits if limit.tpm]
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.hincrby(key, "t", tokens)
                        pipe.expire(key, 120)
                    await pipe.execute()
                return
        for key in keys:
            self._local.setdefault(key, [0, 0])[1] += tokens

    async def put(self, scope: str, subject: str, rpm: int | None, tpm: int | None) -> None:
        async with self.database.transaction() as session:
            await session.merge(RateLimit(scope=scope, subject=subject, rpm=rpm, tpm=tpm))
        await self.cache.delete(f"gw:limit:{scope}:{subject}")

    async def remove(self, scope: str, subject: str) -> bool:
        async with self.database.transaction() as session:
            result = await session.execute(delete(RateLimit).where(
                RateLimit.scope == scope, RateLimit.subject == subject))
        await self.cache.delete(f"gw:limit:{scope}:{subject}")
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(self) -> list[dict[str, Any]]:
        async with self.database.session() as session:
            rows = (await session.scalars(select(RateLimit))).all()
        return [{"scope": r.scope, "subject": r.subject, "rpm": r.rpm, "tpm": r.tpm}
                for r in rows]

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class Recorder:
    """Usage rows and events go through a bounded queue to one writer task that stores
    them in batches (waiting up to `linger` seconds to fill one), so a call pays neither
    a database write nor a publish of its own."""

    def __init__(self, database: Database, events: EventBus, batch: int = 1000,
                 linger: float = 0.2) -> None:
        self.database, self.events, self.batch, self.linger = database, events, batch, linger
        self._now = asyncio.Event()
        self._queue: asyncio.Queue[tuple[dict[str, Any], Event]] = asyncio.Queue(10_000)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def record(self, usage: dict[str, Any], event: Event) -> None:
        self._idle.clear()
        await self._queue.put((usage, event))  # waits only when 10,000 are behind

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored."""
        while not self._queue.empty() or not self._idle.is_set():
            self._now.set()
            await self._idle.wait()
            await asyncio.sleep(0)
        self._now.clear()

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            if self._queue.qsize() < self.batch and not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), self.linger)
            while len(items) < self.batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                async with self.database.transaction() as session:
                    await session.execute(insert(UsageRecord), [u for u, _ in items])
                await self.events.publish_many([e for _, e in items])
            except Exception:  # a write failure must not stop later ones
                log.exception("usage_record_failed", count=len(items))
            if self._queue.empty():
                self._idle.set()

    async def aclose(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
