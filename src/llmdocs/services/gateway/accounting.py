"""Spend and rate: atomic budget reservations, per-minute limits, and the recorder that
writes usage rows and `llmdocs.llm.completed` events off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal, NoReturn

import redis.asyncio as aioredis
import structlog
from cachetools import TTLCache
from opentelemetry.trace import SpanContext
from redis.exceptions import RedisError
from sqlalchemy import Table, case, delete, insert, select, update

from llmdocs.core import tracing
from llmdocs.core.cache import Cache
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus
from llmdocs.core.events.envelope import Event
from llmdocs.core.ids import new_id
from llmdocs.services.gateway.models import Budget, RateLimit, UsageRecord
from llmdocs.services.gateway.thresholds import BudgetAlerts

log = structlog.get_logger(__name__)

Subject = tuple[str, str]  # (scope, subject): ("user", "user:ann") or ("key", jti)
COPY_SECONDS = 5.0  # how stale the database's copy of a Redis budget counter may be


class BudgetExceeded(Exception):
    def __init__(self, scope: str, subject: str) -> None:
        super().__init__(f"The {scope} budget of {subject!r} does not cover this request.")
        self.scope, self.subject = scope, subject


class RateLimitExceeded(Exception):
    def __init__(self, scope: str, what: str, retry_after: int) -> None:
        super().__init__(f"The {scope} {what} limit is reached; retry in {retry_after} s.")
        self.retry_after = retry_after


Period = Literal["total", "daily", "monthly"]


def period_key(period: str, now: datetime) -> str:
    """The window a budget counts in: the UTC day, the UTC month, or all time."""
    if period == "daily":
        return now.strftime("%Y-%m-%d")
    if period == "monthly":
        return now.strftime("%Y-%m")
    return "total"


def _counter_ttl(period: str) -> int | None:
    """How long a window's Redis counter is kept: past its end by a margin, so calls
    in flight at the boundary still settle on it; all-time counters are kept."""
    return {"daily": 2 * 86_400, "monthly": 32 * 86_400}.get(period)


@dataclass(frozen=True)
class Hold:
    """A reservation on one budget, in the window it was made in."""

    scope: str
    subject: str
    window: str
    limit: int  # micro-USD: where the window's alerts are measured from


# every budget is checked first, then the amount held on all of them: one atomic step
# KEYS: counter hashes (s = spent, r = reserved); ARGV: amount, then limit and ttl per key.
# A counter Redis does not hold (first use in its window, or Redis lost its data) is
# answered with -i: the caller seeds it from the database's copy and asks again.
_RESERVE_SCRIPT = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('HEXISTS', key, 's') == 0 then return -i end
end
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('HGET', key, 's') or '0')
  local held = tonumber(redis.call('HGET', key, 'r') or '0')
  if spent + held + amount > tonumber(ARGV[2 * i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'r', amount)
  local ttl = tonumber(ARGV[2 * i + 1])
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
return 0
"""


class _Refused(Exception):
    """A budget that cannot cover the call, leaving its transaction."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold


class BudgetsUnavailable(Exception):
    """Redis holds the counters and cannot be reached: a budgeted call is refused
    rather than let through uncounted."""


class Budgets:
    """Reserve a call's most cost before it runs and settle after, on one counter (Redis,
    or the budget's row), so concurrent calls cannot jointly overshoot; Redis counters are
    copied to the database so a lost Redis does not reset them to zero."""

    def __init__(self, database: Database, cache: Cache, default_usd: float | None,
                 redis_url: str = "", clock: Callable[[], datetime] = utcnow,
                 events: EventBus | None = None) -> None:
        self.database = database
        self.cache = cache
        self.clock = clock
        self.alerts = BudgetAlerts(events)
        self.default_micros = None if default_usd is None else round(default_usd * 1e6)
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        self._reserve = (self._redis.register_script(_RESERVE_SCRIPT)
                         if self._redis else None)
        # counters copied to the database lately, by Redis key
        self._copied: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=COPY_SECONDS)

    async def _budgeted(self, subjects: list[Subject]) -> list[tuple[Subject, int, str]]:
        """(subject, limit, period) of each subject that has a budget."""
        found = []
        for scope, subject in subjects:
            config = await self.cache.get_or_load(
                f"gw:budget:{scope}:{subject}", partial(self._config, scope, subject))
            if config["limit"] is not None:
                found.append(((scope, subject), int(config["limit"]), str(config["period"])))
        return found

    async def _config(self, scope: str, subject: str) -> dict[str, Any]:
        async with self.database.transaction() as session:
            row = (await session.execute(select(Budget.limit_micros, Budget.period).where(
                Budget.scope == scope, Budget.subject == subject))).first()
            if row is None and scope == "user" and self.default_micros is not None:
                await session.execute(insert(Budget).values(
                    scope=scope, subject=subject, limit_micros=self.default_micros,
                    spent_micros=0, reserved_micros=0, period="total",
                    period_key="total", updated_at=utcnow()))
                return {"limit": self.default_micros, "period": "total"}
        return {"limit": None if row is None else row[0],
                "period": "total" if row is None else row[1]}

    @staticmethod
    def _key(scope: str, subject: str, window: str) -> str:
        return f"llmdocs:gateway:budget:{scope}:{subject}:{window}"

    @contextlib.contextmanager
    def _redis_errors(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise BudgetsUnavailable(str(exc)) from None

    async def reserve(self, subjects: list[Subject], amount: int) -> list[Hold]:
        """Hold `amount` micro-USD on every budget of the subjects, all or none."""
        budgeted = await self._budgeted(subjects)
        if not budgeted:
            return []
        now = self.clock()
        held = [Hold(scope, subject, period_key(period, now), limit)
                for (scope, subject), limit, period in budgeted]
        if self._reserve is not None:
            ttls = [_counter_ttl(period) or 0 for _, _, period in budgeted]
            args: list[int] = [amount]
            for (_, limit, _), ttl in zip(budgeted, ttls, strict=True):
                args += [limit, ttl]
            keys = [self._key(h.scope, h.subject, h.window) for h in held]
            with self._redis_errors():
                refused = await self._reserve(keys=keys, args=args)
                while refused < 0:  # each missing counter is seeded once, then it exists
                    missing = -refused - 1
                    await self._seed(keys[missing], held[missing], ttls[missing])
                    refused = await self._reserve(keys=keys, args=args)
            if refused:
                await self._refuse(held[refused - 1])
            return held
        try:
            async with self.database.transaction() as session:
                for hold in held:
                    same = Budget.period_key == hold.window  # else the window rolled over
                    result = await session.execute(
                        update(Budget)
                        .where(Budget.scope == hold.scope, Budget.subject == hold.subject,
                               case((same, Budget.spent_micros + Budget.reserved_micros),
                                    else_=0) + amount <= Budget.limit_micros)
                        .values(reserved_micros=case((same, Budget.reserved_micros),
                                                     else_=0) + amount,
                                spent_micros=case((same, Budget.spent_micros), else_=0),
                                period_key=hold.window)
                    )
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Refused(hold)  # rolls back the others
        except _Refused as refused:
            await self._refuse(refused.hold)
        return held

    async def _refuse(self, hold: Hold) -> NoReturn:
        await self.alerts.refused(hold.scope, hold.subject, hold.window, hold.limit)
        raise BudgetExceeded(hold.scope, hold.subject)

    async def _seed(self, key: str, hold: Hold, ttl: int) -> None:
        """Start a Redis counter from the database's copy of its window's spend."""
        async with self.database.session() as session:
            row = (await session.execute(select(Budget.spent_micros, Budget.period_key).where(
                Budget.scope == hold.scope, Budget.subject == hold.subject))).first()
        spent = row[0] if row is not None and row[1] == hold.window else 0
        assert self._redis is not None
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "s", spent)  # another replica may have seeded it meanwhile
            if ttl:
                pipe.expire(key, ttl)
            await pipe.execute()

    async def _copy(self, held: list[Hold], spent: list[int]) -> None:
        """Write Redis counters to their budgets' rows, each at most every COPY_SECONDS."""
        due = [(hold, s) for hold, s in zip(held, spent, strict=True)
               if self._key(hold.scope, hold.subject, hold.window) not in self._copied]
        if not due:
            return
        async with self.database.transaction() as session:
            for hold, s in due:
                self._copied[self._key(hold.scope, hold.subject, hold.window)] = True
                await session.execute(update(Budget).where(
                    Budget.scope == hold.scope, Budget.subject == hold.subject).values(
                    spent_micros=s, period_key=hold.window, updated_at=utcnow()))

    async def settle(self, held: list[Hold], reserved: int, spent: int) -> None:
        """Release the reservation and add the real cost. A call that straddled the
        window's end adds its cost to the new window, whose counter never held it."""
        if not held:
            return
        if self._redis is not None:
            with self._redis_errors():
                async with self._redis.pipeline(transaction=True) as pipe:
                    for hold in held:
                        key = self._key(hold.scope, hold.subject, hold.window)
                        pipe.hincrby(key, "r", -reserved)
                        pipe.hincrby(key, "s", spent)
                    counted = await pipe.execute()
            totals = [int(s) for s in counted[1::2]]
            await self._copy(held, totals)
        else:
            totals = []
            async with self.database.transaction() as session:
                for hold in held:
                    same = Budget.period_key == hold.window
                    totals.append((await session.execute(
                        update(Budget)
                        .where(Budget.scope == hold.scope, Budget.subject == hold.subject)
                        .values(reserved_micros=case((same, Budget.reserved_micros - reserved),
                                                     else_=Budget.reserved_micros),
                                spent_micros=Budget.spent_micros + spent, updated_at=utcnow())
                        .returning(Budget.spent_micros))).scalar_one_or_none() or 0)
        if spent:
            for hold, total in zip(held, totals, strict=True):
                await self.alerts.settled(hold.scope, hold.subject, hold.window, hold.limit,
                                          total, spent)

    async def put(self, scope: str, subject: str, limit_usd: float, period: Period,
                  reset: bool) -> None:
        limit = round(limit_usd * 1e6)
        window = period_key(period, self.clock())
        async with self.database.transaction() as session:
            values: dict[str, Any] = {"limit_micros": limit, "period": period,
                                      "updated_at": utcnow()}
            if reset:
                values["spent_micros"] = 0
            result = await session.execute(update(Budget).where(
                Budget.scope == scope, Budget.subject == subject).values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                await session.execute(insert(Budget).values(
                    scope=scope, subject=subject, limit_micros=limit, spent_micros=0,
                    reserved_micros=0, period=period, period_key=window,
                    updated_at=utcnow()))
        if reset and self._redis is not None:
            with self._redis_errors():
                await self._redis.hset(self._key(scope, subject, window), "s", 0)
        await self.cache.delete(f"gw:budget:{scope}:{subject}")

    async def remove(self, scope: str, subject: str) -> bool:
        async with self.database.transaction() as session:
            result = await session.execute(delete(Budget).where(
                Budget.scope == scope, Budget.subject == subject))
        await self.cache.delete(f"gw:budget:{scope}:{subject}")
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(self) -> list[dict[str, Any]]:
        """Every budget with the spend of its current window, from the live counter."""
        now = self.clock()
        async with self.database.session() as session:
            rows = (await session.scalars(select(Budget).order_by(
                Budget.scope, Budget.subject))).all()
        windows = [period_key(b.period, now) for b in rows]
        counters = [((b.spent_micros, b.reserved_micros) if b.period_key == window
                     else (0, 0)) for b, window in zip(rows, windows, strict=True)]
        if self._redis is not None and rows:
            with self._redis_errors():
                async with self._redis.pipeline(transaction=False) as pipe:
                    for b, window in zip(rows, windows, strict=True):
                        pipe.hmget(self._key(b.scope, b.subject, window), ["s", "r"])
                    live = await pipe.execute()
                # a counter Redis lost shows the database's copy until it is seeded again
                counters = [(counter[0] if s is None else int(s), int(r or 0))
                            for counter, (s, r) in zip(counters, live, strict=True)]
        return [{"scope": b.scope, "subject": b.subject, "period": b.period,
                 "window": window, "limit_usd": b.limit_micros / 1e6,
                 "spent_usd": spent / 1e6, "reserved_usd": held / 1e6,
                 "updated_at": b.updated_at}
                for b, window, (spent, held) in zip(rows, windows, counters, strict=True)]

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


# check every window first, then count the request, and hold its tokens in the windows
# with a token limit, in all of them: one atomic script. KEYS: window hashes (r =
# requests, t = tokens held or used); ARGV: rpm and tpm per key (0: none), then the tokens
_LIMIT_SCRIPT = """
local tokens = tonumber(ARGV[#ARGV])
for i, key in ipairs(KEYS) do
  local rpm = tonumber(ARGV[2 * i - 1])
  local tpm = tonumber(ARGV[2 * i])
  local r = tonumber(redis.call('HGET', key, 'r') or '0')
  local t = tonumber(redis.call('HGET', key, 't') or '0')
  if rpm > 0 and r >= rpm then return {i, 1} end
  if tpm > 0 and t > 0 and t + tokens > tpm then return {i, 2} end
end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'r', 1)
  if tonumber(ARGV[2 * i]) > 0 then redis.call('HINCRBY', key, 't', tokens) end
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


@dataclass(frozen=True)
class Admitted:
    """A request counted in its windows: the windows with a token limit, which hold its
    tokens until it settles, and whether they are Redis's (else this process's)."""

    windows: tuple[str, ...] = ()
    shared: bool = False


class Limiter:
    """Requests and tokens per one-minute window (Redis or in-process); a request holds its
    most tokens when admitted, so concurrent requests cannot jointly pass a limit (they
    passed it by 22% in 100 at once), and one larger than the limit goes alone."""

    def __init__(self, database: Database, cache: Cache, redis_url: str,
                 default_rpm: int | None, default_tpm: int | None) -> None:
        self.database, self.cache = database, cache
        self.defaults = (default_rpm, default_tpm)
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        self._script = self._redis.register_script(_LIMIT_SCRIPT) if self._redis else None
        # one window per limited subject and minute, kept two minutes: bounded, and the
        # oldest windows go first should more subjects be limited than it holds
        self._local: TTLCache[str, list[int]] = TTLCache(maxsize=20_000, ttl=120)

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

    async def admit(self, limits: list[Limit], tokens: int) -> Admitted:
        """Count one request and hold `tokens` for it, or raise RateLimitExceeded without
        counting it."""
        if not limits:
            return Admitted()
        now = time.time()
        retry = int(60 - now % 60) + 1
        keys = [self._window(limit, now) for limit in limits]
        held = tuple(key for key, limit in zip(keys, limits, strict=True) if limit.tpm)
        if self._script is not None:
            with contextlib.suppress(RedisError, OSError):
                args = [v for limit in limits for v in (limit.rpm or 0, limit.tpm or 0)]
                index, what = await self._script(keys=keys, args=[*args, tokens])
                if index:
                    raise RateLimitExceeded(limits[index - 1].scope,
                                      "requests" if what == 1 else "tokens", retry)
                return Admitted(held, shared=True)
        counts = [self._local.setdefault(key, [0, 0]) for key in keys]
        for limit, (requests, used) in zip(limits, counts, strict=True):
            if limit.rpm and requests >= limit.rpm:
                raise RateLimitExceeded(limit.scope, "requests", retry)
            if limit.tpm and used and used + tokens > limit.tpm:
                raise RateLimitExceeded(limit.scope, "tokens", retry)
        for limit, count in zip(limits, counts, strict=True):
            count[0] += 1
            if limit.tpm:
                count[1] += tokens
        return Admitted(held)

    async def settle(self, admitted: Admitted, held: int, used: int) -> None:
        """Let go of the `held` tokens and count the `used` ones, in the windows the
        request was admitted in."""
        if not admitted.windows or held == used:
            return
        if admitted.shared and self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in admitted.windows:
                        pipe.hincrby(key, "t", used - held)
                        pipe.expire(key, 120)
                    await pipe.execute()
            return
        for key in admitted.windows:
            count = self._local.get(key)
            if count is not None:
                count[1] += used - held

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


@dataclass(frozen=True, slots=True)
class Completed:
    """One finished call as the request hands it over: how to build its usage row and
    event data, and the request context the event is stamped with. The writer builds
    rows, ids and events, so the request pays for none of them."""

    facts: Callable[[], tuple[dict[str, Any], dict[str, Any]]]  # usage row, event data
    subject: str
    created_at: datetime
    correlation_id: str | None
    span: SpanContext

    def event(self, data: dict[str, Any]) -> Event:
        traceparent = tracing.traceparent(self.span) if self.span.is_valid else None
        return Event(source="llmdocs/gateway", type=COMPLETED, subject=self.subject,
                     time=self.created_at, data=data, correlationid=self.correlation_id,
                     traceparent=traceparent)


_USAGE: Table = UsageRecord.__table__  # type: ignore[assignment]
COMPLETED = "llmdocs.llm.completed"


class Recorder:
    """Usage rows and events go through a bounded queue to one writer task that stores
    them in batches (waiting up to `linger` seconds to fill one), so a call pays neither
    a database write nor a publish nor the event's validation."""

    def __init__(self, database: Database, events: EventBus, batch: int = 500,
                 linger: float = 0.2, depth: int = 2_000) -> None:
        self.database, self.events, self.batch, self.linger = database, events, batch, linger
        self._now = asyncio.Event()
        # bounded memory however far the writer falls behind: a call waits for room
        self._queue: asyncio.Queue[Completed] = asyncio.Queue(depth)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def record(self, completed: Completed) -> None:
        self._idle.clear()
        await self._queue.put(completed)  # waits only when `depth` are behind

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
                facts = [item.facts() for item in items]
                rows = [{**usage, "id": new_id()} for usage, _ in facts]
                async with self.database.transaction() as session:
                    # a Core executemany: the ORM's bulk path costs several times more
                    await (await session.connection()).execute(_USAGE.insert(), rows)
                await self.events.publish_many([item.event(data) for item, (_, data)
                                                in zip(items, facts, strict=True)])
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
