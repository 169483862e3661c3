"""Two-level cache: an in-process TTL LRU (L1) in front of Redis (L2) shared by replicas,
where a delete reaches every replica and wins over a load that raced with it; without
Redis, or while it is down, L1 only (docs/internals.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar, cast

import orjson
import redis.asyncio as aioredis
import structlog
from cachetools import TLRUCache
from opentelemetry.trace import SpanKind
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from llmdocs.core import tracing
from llmdocs.core.config import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

_PREFIX = "llmdocs:cache"
ALL_KEYS = "*"  # an invalidation of a whole namespace (`clear`)
# what an L1 entry costs besides its JSON (key, tuple, links), measured
_ENTRY_OVERHEAD = 512
_REDIS_TIMEOUT_SECONDS = 1.0
# a version must outlive any load that read it; loads take milliseconds
_VERSION_TTL_MS = 600_000
# set the value only if no delete bumped the key's version since the load began
_SET_IF_VERSION = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


@dataclass
class CacheStats:
    """Counters a service exports as metrics."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    l2_errors: int = 0


class _Entry(NamedTuple):
    payload: str
    ttl: float


# orjson reads JSON several times faster than json and to the same values, except that
# it makes integers beyond 64 bits floats (so a payload with 19 digits in a row is read
# by json) and refuses what json.dumps writes for NaN, infinities and lone surrogates
_LONG_DIGITS = re.compile(r"\d{19}")


def _loads(payload: str) -> Any:
    """A payload `json.dumps` wrote, decoded to exactly what `json.loads` returns."""
    if _LONG_DIGITS.search(payload) is None:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class Cache:
    """A namespaced two-level cache; one per service (the namespace keeps keys apart)."""

    def __init__(
        self,
        namespace: str,
        *,
        url: str = "",
        ttl: float = 30.0,
        max_entries: int = 10_000,
        max_bytes: int = 32 * 2**20,
        retry_seconds: float = 1.0,
    ) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self.stats = CacheStats()
        # bounded by entries and by bytes: each entry counts its size, and at least an
        # equal share of the bytes, so neither many small nor a few large values grow it
        share = max_bytes // max_entries
        self._l1: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=max_bytes, ttu=lambda _key, entry, now: now + entry.ttl,
            getsizeof=lambda entry: max(share, _ENTRY_OVERHEAD + len(entry.payload)),
        )
        self._l1_max_item = max_bytes // 8  # one huge value must not empty the cache
        # no client-side retries: a failure must surface so we degrade, and so the
        # listener notices a lost subscription (missed invalidations) instead of
        # being resubscribed silently
        self._redis: aioredis.Redis | None = (
            aioredis.Redis.from_url(
                url, decode_responses=True, retry=Retry(NoBackoff(), 0),
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
            )
            if url else None
        )
        self._set_if_version = self._redis.register_script(_SET_IF_VERSION) if self._redis else None
        self._retry_seconds = retry_seconds
        self._retry_at = 0.0  # 0 while Redis is healthy, else when to try it again
        self._channel = f"{_PREFIX}:{namespace}:invalidate"
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._generation = 0  # bumped by every invalidation; guards L1 fills
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str) -> Cache:
        return cls(namespace, url=settings.cache_url, ttl=settings.cache_ttl_seconds,
                   max_entries=settings.cache_max_entries,
                   max_bytes=settings.cache_max_bytes)

    async def start(self) -> None:
        """Listen for other replicas' invalidations; returns after the first attempt to
        subscribe, successful or not (it keeps retrying in the background)."""
        if self._redis is None or self._listener is not None:
            return
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(self._redis, ready))
        await ready.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()

    async def get(self, key: str) -> Any:
        """The cached value, or None on a miss."""
        entry = self._l1.get(key)
        if entry is not None:
            self.stats.l1_hits += 1
            return _loads(entry.payload)
        redis = self._l2()
        if redis is not None:
            generation = self._generation
            with self._tolerate("GET"):
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.get(self._key(key))
                    pipe.pttl(self._key(key))
                    payload, pttl = await pipe.execute()
                if payload is not None:
                    self.stats.l2_hits += 1
                    # unless a delete came while we read: what we got may be what it deleted
                    if pttl > 0 and generation == self._generation:
                        self._keep(key, _Entry(payload, min(self.ttl, pttl / 1000)))
                    return _loads(payload)
        self.stats.misses += 1
        return None

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache `value` in both levels. It does not notify other replicas: for data
        that changes, write the source and then `delete()` the key."""
        if value is None:
            raise ValueError("None cannot be cached: it means a miss")
        payload, ttl = self._remember(key, value, ttl)
        redis = self._l2()
        if redis is not None:
            with self._tolerate("SET"):
                await redis.set(self._key(key), payload, px=_ms(ttl))

    async def delete(self, *keys: str) -> None:
        """Invalidate keys here, in Redis and in every other replica's L1."""
        self._forget(keys)
        # tried even while backing off: a lost invalidation leaves stale data in Redis
        if self._redis is not None and keys:
            with self._tolerate("DEL"):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.delete(*(self._key(key) for key in keys))
                    for key in keys:
                        pipe.incr(self._version_key(key))
                        pipe.pexpire(self._version_key(key), _VERSION_TTL_MS)
                    pipe.publish(self._channel, json.dumps(keys))
                    await pipe.execute()

    async def clear(self) -> None:
        """Invalidate every key of this namespace here, in Redis and in every replica's
        L1: after an erasure no cached copy of the erased person's data may stay."""
        self._forget_all()
        if self._redis is not None:
            with self._tolerate("DEL"):
                pattern = self._key("*")
                async for found in self._redis.scan_iter(match=pattern, count=1000):
                    await self._redis.delete(found)
                await self._redis.publish(self._channel, json.dumps(ALL_KEYS))

    async def get_or_load(
        self, key: str, loader: Callable[[], Awaitable[T]], ttl: float | None = None
    ) -> T:
        """The cached value, else what `loader` returns (cached unless None). Concurrent
        misses in this process share one call of `loader`. T must round-trip through
        JSON (a tuple comes back as a list from the cache)."""
        cached: T | None = await self.get(key)
        if cached is not None:
            return cached
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.create_task(self._load(key, loader, ttl))
            self._inflight[key] = flight
            flight.add_done_callback(partial(self._landed, key))
        # shielded: one caller giving up does not cancel the load for the others
        result: T = await asyncio.shield(flight)
        return result

    async def _load(self, key: str, loader: Callable[[], Awaitable[T]], ttl: float | None) -> T:
        version = await self._version(key)
        value = await loader()
        # a delete since the load began detached it: what it read may predate the write
        if value is None or self._inflight.get(key) is not asyncio.current_task():
            return value
        payload, ttl = self._remember(key, value, ttl)
        if version is not None and self._set_if_version is not None:
            with self._tolerate("EVALSHA"):
                stored = await self._set_if_version(
                    keys=[self._key(key), self._version_key(key)],
                    args=[payload, _ms(ttl), version],
                )
                if not stored:  # another replica deleted the key meanwhile
                    self._l1.pop(key, None)
        return value

    async def _version(self, key: str) -> str | None:
        """The key's invalidation version in Redis ("" if never deleted); None when
        Redis is unavailable, and then a load is cached in L1 only."""
        redis = self._l2()
        if redis is not None:
            with self._tolerate("GET"):
                version = await redis.get(self._version_key(key))
                return cast(str, version or "")  # str: the client decodes responses
        return None

    def _landed(self, key: str, flight: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    def _remember(self, key: str, value: Any, ttl: float | None) -> tuple[str, float]:
        """Put a value in L1; returns it encoded and its TTL, for Redis."""
        payload, ttl = json.dumps(value), self.ttl if ttl is None else ttl
        # with Redis behind it, L1 lives at most self.ttl: that bounds how long a
        # replica can serve a value whose invalidation message it missed
        self._keep(key, _Entry(payload, min(ttl, self.ttl) if self._redis else ttl))
        return payload, ttl

    def _keep(self, key: str, entry: _Entry) -> None:
        if len(entry.payload) <= self._l1_max_item:
            self._l1[key] = entry
        else:  # too big for L1 (Redis may still hold it); drop any older, smaller copy
            self._l1.pop(key, None)

    def _forget(self, keys: Iterable[str]) -> None:
        self._generation += 1
        for key in keys:
            self._l1.pop(key, None)
            self._inflight.pop(key, None)

    def _forget_all(self) -> None:
        self._generation += 1
        self._l1.clear()
        self._inflight.clear()

    async def _listen(self, redis: aioredis.Redis, ready: asyncio.Event) -> None:
        try:
            while True:
                with self._tolerate("SUBSCRIBE"):
                    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                        await pubsub.subscribe(self._channel)
                        # whatever was invalidated while we were not subscribed is unknown
                        self._forget_all()
                        ready.set()
                        # our own deletes come back too; forgetting twice is harmless
                        async for message in pubsub.listen():
                            keys = json.loads(message["data"])
                            if keys == ALL_KEYS:
                                self._forget_all()
                            else:
                                self._forget(keys)
                ready.set()
                await asyncio.sleep(self._retry_seconds)
        finally:
            ready.set()  # start() must not wait forever on a listener that crashed

    def _l2(self) -> aioredis.Redis | None:
        """Redis, unless it is not configured or failed within the last retry_seconds."""
        if self._redis is None or time.monotonic() < self._retry_at:
            return None
        return self._redis

    @contextlib.contextmanager
    def _tolerate(self, operation: str) -> Iterator[None]:
        """Turn a Redis failure into L1-only operation for the next retry_seconds; the
        call is a span of the request's trace."""
        try:
            with tracing.span(f"{operation} redis", SpanKind.CLIENT, {
                    "db.system.name": "redis", "db.operation.name": operation,
                    "db.namespace": self.namespace}, within_trace=True):
                yield
        except (RedisError, OSError) as exc:
            self.stats.l2_errors += 1
            if not self._retry_at:
                log.warning("cache_l2_unavailable", namespace=self.namespace, error=repr(exc))
            self._retry_at = time.monotonic() + self._retry_seconds
        else:
            if self._retry_at:
                log.info("cache_l2_recovered", namespace=self.namespace)
                self._retry_at = 0.0

    def _key(self, key: str) -> str:
        return f"{_PREFIX}:{self.namespace}:k:{key}"

    def _version_key(self, key: str) -> str:
        return f"{_PREFIX}:{self.namespace}:v:{key}"
