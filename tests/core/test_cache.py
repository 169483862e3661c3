"""The two-level cache against a real Redis: TTLs, LRU bound, replicas sharing Redis,
cross-replica invalidation, single flight, and life without Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from llmdocs.core.cache import Cache, CacheStats
from llmdocs.core.config import Settings
from llmdocs.devservers import RedisServer
from waiting import eventually


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Cache, Cache]]:
    """Two caches of one service sharing Redis, as two replicas would; a long L1 TTL so
    only an invalidation can make them forget."""
    a, b = (Cache("svc", url=redis_url, ttl=60, retry_seconds=0.1) for _ in range(2))
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_from_settings_uses_the_cache_settings(settings: Settings) -> None:
    cache = Cache.from_settings(
        settings.model_copy(update={"cache_ttl_seconds": 5.0, "cache_max_entries": 7,
                                    "cache_max_bytes": 7000}), "svc")
    assert (cache.namespace, cache.ttl, cache._l1.maxsize) == ("svc", 5.0, 7000)
    await cache.start()  # no cache_url: L1 only, nothing to start
    await cache.close()


async def test_l1_entries_expire_after_their_ttl() -> None:
    cache = Cache("svc", ttl=0.05)
    await cache.set("default", {"a": 1})
    await cache.set("longer", [1, 2], ttl=60)
    assert await cache.get("default") == {"a": 1}
    await asyncio.sleep(0.1)
    assert await cache.get("default") is None
    assert await cache.get("longer") == [1, 2]  # without Redis, L1 honours the given ttl


async def test_l1_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = Cache("svc", max_entries=2)
    await cache.set("a", 1)
    await cache.set("b", 2)
    assert await cache.get("a") == 1  # a is now more recent than b
    await cache.set("c", 3)
    assert [await cache.get(k) for k in ("a", "b", "c")] == [1, None, 3]


async def test_l1_is_bounded_by_bytes_and_skips_values_too_big_for_it() -> None:
    cache = Cache("svc", max_entries=1000, max_bytes=80_000)
    for i in range(20):
        await cache.set(f"k{i}", "x" * 5_000)
    assert cache._l1.currsize <= 80_000
    assert await cache.get("k19") is not None and await cache.get("k0") is None
    await cache.set("big", "x" * 20_000)  # more than an eighth of L1: not kept in process
    assert await cache.get("big") is None and await cache.get("k19") is not None


async def test_values_are_copies_and_none_is_not_cacheable() -> None:
    cache = Cache("svc")
    await cache.set("k", {"items": [1]})
    (await cache.get("k"))["items"].append(2)
    assert await cache.get("k") == {"items": [1]}
    with pytest.raises(ValueError, match="None"):
        await cache.set("k", None)


# what JSON can carry that a fast decoder may read differently: integers beyond 64
# bits, NaN and infinities, lone surrogates, digits in strings, ints next to floats
AWKWARD_VALUES: list[Any] = [
    {"rpm": 60, "tpm": None}, [2**64 - 1, -(2**63)], [2**64, -(2**63) - 1, 2**70],
    {"big": 123456789012345678901234567890, "f": 1.0, "i": 1}, [float("nan")],
    {"inf": [float("inf"), float("-inf")]}, "\ud800 lone", "é \x00 ünïcode",
    {"id": "1234567890123456789012", "n": 0.1}, [True, False, -0.0, 5e-324],
]


async def test_values_come_back_as_json_reads_them(replicas: tuple[Cache, Cache]) -> None:
    """Whatever decoder the cache reads with, a value comes back from either level
    exactly as `json.loads(json.dumps(value))` (types and all, so compared by repr)."""
    a, b = replicas
    for n, value in enumerate(AWKWARD_VALUES):
        expected = repr(json.loads(json.dumps(value)))
        await a.set(f"k{n}", value)
        assert repr(await a.get(f"k{n}")) == expected  # from L1
        assert repr(await b.get(f"k{n}")) == expected  # from Redis
        assert repr(await b.get(f"k{n}")) == expected  # from L1, kept from Redis
    assert b.stats.l2_hits == b.stats.l1_hits == len(AWKWARD_VALUES)


async def test_a_replica_reads_through_to_redis(replicas: tuple[Cache, Cache]) -> None:
    a, b = replicas
    await a.set("k", {"v": 1})
    assert await b.get("k") == {"v": 1}
    assert await b.get("k") == {"v": 1}
    assert b.stats == CacheStats(l1_hits=1, l2_hits=1, misses=0)
    assert await b.get("other") is None
    assert b.stats.misses == 1


async def test_namespaces_keep_keys_apart(replicas: tuple[Cache, Cache], redis_url: str) -> None:
    a, _ = replicas
    other = Cache("other", url=redis_url)
    await a.set("k", 1)
    assert await other.get("k") is None
    await other.close()


async def test_redis_ttl_expires_and_bounds_the_copy_in_l1(
    replicas: tuple[Cache, Cache],
) -> None:
    a, b = replicas
    await a.set("k", 1, ttl=0.1)
    assert await b.get("k") == 1  # copied into b's L1 with what is left of the 0.1s
    await asyncio.sleep(0.15)
    assert await b.get("k") is None
    assert await a.get("k") is None


async def test_with_redis_behind_it_l1_keeps_a_value_at_most_the_cache_ttl(
    redis_url: str,
) -> None:
    cache = Cache("svc", url=redis_url, ttl=0.05)
    await cache.set("k", 1, ttl=60)
    await asyncio.sleep(0.1)
    assert await cache.get("k") == 1
    assert cache.stats == CacheStats(l1_hits=0, l2_hits=1, misses=0)
    await cache.close()


async def test_delete_on_one_replica_invalidates_the_others_l1(
    replicas: tuple[Cache, Cache],
) -> None:
    a, b = replicas
    await a.set("k", "old")
    await a.set("kept", "still")
    assert await b.get("k") == "old"  # now in b's L1
    await a.delete("k")
    assert await a.get("k") is None

    async def b_forgot() -> bool:
        return await b.get("k") is None

    await eventually(b_forgot)
    assert await b.get("kept") == "still"


async def test_clear_empties_redis_and_every_replicas_l1(
    replicas: tuple[Cache, Cache], redis_url: str,
) -> None:
    a, b = replicas
    other = Cache("other", url=redis_url)
    await other.set("k", "another namespace")
    for key in ("k1", "k2"):
        await a.set(key, "alice's")
        assert await b.get(key) == "alice's"  # now in b's L1
    await a.clear()
    assert await a.get("k1") is None and await a.get("k2") is None

    async def b_forgot() -> bool:
        return await b.get("k1") is None and await b.get("k2") is None

    await eventually(b_forgot)
    assert await other.get("k") == "another namespace"
    await other.close()


async def test_single_flight_calls_the_loader_once() -> None:
    cache = Cache("svc")
    calls = 0
    started, release = asyncio.Event(), asyncio.Event()

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return {"n": 42}

    waiters = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(10)]
    await started.wait()
    release.set()
    assert await asyncio.gather(*waiters) == [{"n": 42}] * 10
    assert calls == 1
    assert await cache.get_or_load("k", loader) == {"n": 42}
    assert calls == 1


async def test_a_failing_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = Cache("svc")
    started, release = asyncio.Event(), asyncio.Event()

    async def failing() -> int:
        started.set()
        await release.wait()
        raise RuntimeError("source down")

    waiters = [asyncio.create_task(cache.get_or_load("k", failing)) for _ in range(3)]
    await started.wait()
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)

    async def working() -> int:
        return 7

    assert await cache.get_or_load("k", working) == 7


async def test_a_loaded_none_is_not_cached() -> None:
    cache = Cache("svc")
    calls = 0

    async def absent() -> str | None:  # a value that may be missing
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load("k", absent) is None
    assert await cache.get_or_load("k", absent) is None
    assert calls == 2


async def test_a_load_racing_a_local_delete_is_not_cached() -> None:
    """The loader read the source before a write; the write's delete lands while it
    runs: its value goes to its callers but not into the cache, and a caller arriving
    after the delete gets a fresh load instead of joining the stale one."""
    cache = Cache("svc")
    started, release = asyncio.Event(), asyncio.Event()
    loads: list[str] = []

    async def stale() -> str:
        loads.append("stale")
        started.set()
        await release.wait()
        return "old"

    async def fresh() -> str:
        loads.append("fresh")
        return "new"

    racing = asyncio.create_task(cache.get_or_load("k", stale))
    await started.wait()
    await cache.delete("k")
    after_delete = asyncio.create_task(cache.get_or_load("k", fresh))
    release.set()
    assert await racing == "old"
    assert await after_delete == "new"
    assert loads == ["stale", "fresh"]
    assert await cache.get("k") == "new"


async def test_a_lost_subscription_forgets_l1_on_resubscribing(
    replicas: tuple[Cache, Cache], redis_url: str
) -> None:
    """Invalidations published while a replica was not subscribed are lost to it, so
    it drops its whole L1 when it subscribes again."""
    a, b = replicas
    await a.set("k", "old")
    admin = aioredis.from_url(redis_url)
    await admin.client_kill_filter(_type="pubsub")  # both listeners lose their connection
    await admin.aclose()
    await b.delete("k")  # a is not subscribed (it retries after a second)

    async def a_forgot() -> bool:
        return await a.get("k") is None

    await eventually(a_forgot)


async def test_a_load_racing_another_replicas_delete_is_not_cached(
    replicas: tuple[Cache, Cache], redis_url: str
) -> None:
    """Even when the invalidation message comes late (here: never, the racing replica
    is not listening), Redis refuses the stale value: the delete bumped the version."""
    _, deleter = replicas
    racer = Cache("svc", url=redis_url)
    started, release = asyncio.Event(), asyncio.Event()

    async def stale() -> str:
        started.set()
        await release.wait()
        return "old"

    racing = asyncio.create_task(racer.get_or_load("k", stale))
    await started.wait()  # the racer has read the key's version and is loading
    await deleter.delete("k")
    release.set()
    assert await racing == "old"
    assert await racer.get("k") is None
    assert await deleter.get("k") is None
    await racer.close()


async def test_a_redis_read_racing_a_delete_is_not_kept_in_l1(
    replicas: tuple[Cache, Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis answers a read with the old value, and a delete lands before the answer is
    handled: the old value goes to that caller but not into L1."""
    a, b = replicas
    await b.set("k", "old")
    assert a._redis is not None
    answered, release = asyncio.Event(), asyncio.Event()
    pipeline = a._redis.pipeline

    def slow_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def execute_then_wait(*args: Any, **kwargs: Any) -> Any:
            result = await execute(*args, **kwargs)
            answered.set()
            await release.wait()  # the answer is still on its way
            return result

        pipe.execute = execute_then_wait  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(a._redis, "pipeline", slow_pipeline)
    reading = asyncio.create_task(a.get("k"))
    await answered.wait()
    monkeypatch.undo()
    await a.delete("k")
    release.set()
    assert await reading == "old"
    assert await a.get("k") is None


async def test_without_redis_the_cache_serves_from_l1_and_never_raises(
    redis_server: RedisServer,
) -> None:
    cache = Cache("svc", url=redis_server.url, ttl=60, retry_seconds=0.05)
    await cache.start()
    await cache.set("k", "v")
    redis_server.stop()

    assert await cache.get("k") == "v"
    await cache.set("k2", "v2")
    assert await cache.get("k2") == "v2"
    await cache.delete("k")
    assert await cache.get("k") is None

    async def load() -> str:
        return "loaded"

    assert await cache.get_or_load("k3", load) == "loaded"
    assert await cache.get("k3") == "loaded"
    assert cache.stats.l2_errors >= 1

    # back again: Redis serves a value another replica wrote
    redis_server.start()
    other = Cache("svc", url=redis_server.url)
    await other.set("shared", "from-other")

    async def sees_redis() -> bool:
        return bool(await cache.get("shared") == "from-other")

    await eventually(sees_redis)
    await other.close()
    await cache.close()


async def test_starting_while_redis_is_down_does_not_raise(redis_server: RedisServer) -> None:
    redis_server.stop()
    cache = Cache("svc", url=redis_server.url)
    await cache.start()
    await cache.set("k", 1)
    assert await cache.get("k") == 1
    await cache.close()


async def test_counters_count_each_level(replicas: tuple[Cache, Cache]) -> None:
    a, b = replicas

    async def load() -> int:
        return 1

    assert await a.get_or_load("k", load) == 1  # miss, loaded
    assert await a.get("k") == 1  # L1
    assert await b.get("k") == 1  # L2
    assert await b.get("k") == 1  # L1
    assert await b.get("none") is None  # miss
    assert a.stats == CacheStats(l1_hits=1, l2_hits=0, misses=1, l2_errors=0)
    assert b.stats == CacheStats(l1_hits=1, l2_hits=1, misses=1, l2_errors=0)
