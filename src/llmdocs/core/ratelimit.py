"""Per-principal rate limits of every service (GCRA): a user's requests to one service,
a service's own, and refused tokens per client address, counted in Redis when one is
configured (replicas share the budget) and in-process otherwise or while it is down."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog
from cachetools import LRUCache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmdocs.core.auth import Principal
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_BASE, Problem

log = structlog.get_logger(__name__)

_PREFIX = "llmdocs:ratelimit"
_MINUTE_US = 60_000_000
# a limiter that waits on its store slows every request: Redis answers in well under a
# millisecond, so a store slower than this is treated as down
_REDIS_TIMEOUT_SECONDS = 0.25
_LOCAL_KEYS = 100_000  # a forgotten key only resets that caller's budget
STATE_KEY = "rate_limit"  # where an admitted request's decision waits for its headers

# GCRA over the store's clock (one clock for every replica), in microseconds. KEYS: the
# caller's theoretical arrival time; ARGV: the interval between requests, the burst's
# span. Returns {admitted, µs since/until the next admission, µs until the budget is full}
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local allow_at = tat + interval - span
if now < allow_at then return {0, allow_at - now, tat - now} end
-- as digits: Lua writes a number this large in 14 significant digits
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval),
           'PX', string.format('%.0f', math.ceil((tat + interval - now) / 1000)))
return {1, now - allow_at, tat + interval - now}
"""


@dataclass(frozen=True, slots=True)
class Quota:
    """`per_minute` requests a minute on average, up to `burst` of them at once."""

    per_minute: int
    burst: int
    # worked out once: every request of the principal uses them
    interval_us: int = field(init=False)  # between two requests, on average
    span_us: int = field(init=False)  # a whole burst's worth of intervals

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval_us", max(1, _MINUTE_US // self.per_minute))
        object.__setattr__(self, "span_us", self.interval_us * self.burst)


def quota(per_minute: int, burst: int) -> Quota | None:
    """The quota a pair of settings says; None (no limit) when `per_minute` is 0."""
    return Quota(per_minute, burst or per_minute) if per_minute > 0 else None


@dataclass(frozen=True, slots=True)
class Decision:
    """One request counted: whether it may pass, and what the draft's headers say."""

    admitted: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the whole burst is available again
    retry_after: int  # seconds until one more request passes (0 when admitted)

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` (draft-ietf-httpapi-ratelimit-headers) and, if refused, Retry-After."""
        headers = {"RateLimit-Limit": str(self.limit),
                   "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_seconds)}
        if not self.admitted:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """An admitted answer's `RateLimit-*` headers as ASGI sends them."""
        return [(b"ratelimit-limit", b"%d" % self.limit),
                (b"ratelimit-remaining", b"%d" % self.remaining),
                (b"ratelimit-reset", b"%d" % self.reset_seconds)]


def _decision(quota: Quota, admitted: bool, gap_us: int, full_us: int) -> Decision:
    """From GCRA's figures: `gap_us` is the slack left when admitted, else the wait."""
    seconds = math.ceil(max(0, full_us) / 1_000_000)
    if admitted:
        return Decision(True, quota.burst, min(quota.burst - 1, gap_us // quota.interval_us),
                        seconds, 0)
    return Decision(False, quota.burst, 0, seconds, max(1, math.ceil(gap_us / 1_000_000)))


class _LocalStore:
    """GCRA in this process: each key's theoretical arrival time."""

    def __init__(self) -> None:
        self._tat: LRUCache[str, int] = LRUCache(maxsize=_LOCAL_KEYS)

    def take(self, key: str, quota: Quota) -> Decision:
        now = time.monotonic_ns() // 1000
        tat = max(self._tat.get(key, 0), now)
        allow_at = tat + quota.interval_us - quota.span_us
        if now < allow_at:
            return _decision(quota, False, allow_at - now, tat - now)
        self._tat[key] = tat + quota.interval_us
        return _decision(quota, True, now - allow_at, tat + quota.interval_us - now)


class RateLimiter:
    """One service's limits: `users` per subject (an on-behalf-of token counts as its
    user), `services` for services acting as themselves, `failures` for refused tokens
    per client address (past it, the address is refused anything for a while)."""

    def __init__(self, service: str, *, users: Quota | None, services: Quota | None = None,
                 failures: Quota | None = None, url: str = "",
                 retry_seconds: float = 5.0) -> None:
        self.service, self.users, self.services, self.failures = (
            service, users, services, failures)
        self._local = _LocalStore()
        # addresses refused for too many bad tokens, until when (monotonic): checked
        # before any token is, at the cost of a lookup
        self._blocked: LRUCache[str, float] = LRUCache(maxsize=_LOCAL_KEYS)
        self._redis = aioredis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_timeout=_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=_REDIS_TIMEOUT_SECONDS) if url else None
        self._script = self._redis.register_script(_GCRA) if self._redis else None
        self._retry_seconds = retry_seconds
        self._probe: asyncio.Task[None] | None = None  # set while Redis is down

    @classmethod
    def from_settings(cls, settings: Settings, service: str) -> RateLimiter:
        per_minute = settings.rate_limit_services.get(service, settings.rate_limit_per_minute)
        return cls(service, url=settings.cache_url,
                   users=quota(per_minute, settings.rate_limit_burst),
                   services=quota(settings.rate_limit_service_per_minute,
                                  settings.rate_limit_burst),
                   failures=quota(settings.rate_limit_failures_per_minute, 0))

    async def admit(self, request: Request, principal: Principal) -> None:
        """Count an authenticated request against its principal's budget; past it, a 429."""
        kind, limit = ("service", self.services) if principal.is_service else ("user",
                                                                               self.users)
        if limit is None:
            return
        decision = await self._take(f"{kind}:{principal.subject}", limit)
        if not decision.admitted:
            raise _limited(decision, f"The rate limit of {principal.subject!r} on the "
                           f"{self.service} ({limit.per_minute} requests a minute, "
                           f"{limit.burst} at once) is reached")
        request.state.rate_limit = decision

    def check_address(self, request: Request) -> None:
        """Refuse at once an address that sent too many refused tokens lately."""
        if self.failures is None or not self._blocked:
            return
        until = self._blocked.get(_address(request))
        if until is not None:
            wait = until - time.monotonic()
            if wait > 0:
                raise _limited(Decision(False, self.failures.burst, 0, math.ceil(wait),
                                        math.ceil(wait)), _TOO_MANY_FAILURES)
            self._blocked.pop(_address(request), None)

    async def refused(self, request: Request) -> None:
        """Count a refused token against its address; past the limit, a 429 instead."""
        if self.failures is None:
            return
        address = _address(request)
        decision = await self._take(f"address:{address}", self.failures)
        if not decision.admitted:
            self._blocked[address] = time.monotonic() + decision.retry_after
            raise _limited(decision, _TOO_MANY_FAILURES)

    async def _take(self, key: str, limit: Quota) -> Decision:
        if self._script is not None and self._probe is None:
            try:
                admitted, gap, full = await self._script(
                    keys=[f"{_PREFIX}:{self.service}:{key}"],
                    args=[limit.interval_us, limit.span_us])
                return _decision(limit, bool(admitted), int(gap), int(full))
            except (RedisError, OSError) as exc:
                self._redis_down(exc)
        return self._local.take(key, limit)

    def _redis_down(self, exc: Exception) -> None:
        """Count in this process until a probe in the background reaches Redis again:
        no request waits on a store that is down."""
        if self._probe is None:
            log.warning("rate_limit_store_unavailable", service=self.service,
                        error=repr(exc), fallback="in-process")
            # in a context of its own: not the failing request's (its correlation id)
            self._probe = asyncio.create_task(self._wait_for_redis(),
                                              context=contextvars.Context())

    async def _wait_for_redis(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._retry_seconds)
            with contextlib.suppress(RedisError, OSError):
                await self._redis.ping()
                break
        log.info("rate_limit_store_recovered", service=self.service)
        self._probe = None

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._redis is not None:
            await self._redis.aclose()


_TOO_MANY_FAILURES = ("Too many requests from this address were refused for a missing "
                      "or invalid token")


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limited(decision: Decision, why: str) -> Problem:
    return Problem(429, f"{why}; retry in {decision.retry_after} s.",
                   type=PROBLEM_BASE + "rate-limited", headers=decision.headers())


class RateLimitHeadersMiddleware:
    """Adds an admitted request's `RateLimit-*` headers to its response, whatever the
    route returns (a dependency's own headers are lost on a returned Response)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get(STATE_KEY)
                if decision is not None:  # appended: no header of the route's is replaced
                    message["headers"] = [*message.get("headers", ()),
                                          *decision.raw_headers()]
            await send(message)

        await self.app(scope, receive, send_wrapper)
