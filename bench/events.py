"""Throughput of our RedisEventBus against raw redis-py, on a throwaway Redis server.

    .venv/bin/python bench/events.py [--events 100000] [--size 500] [--runs 3]

raw: pipelined XADD in batches of 500, then XREADGROUP COUNT 500 + XACK until drained;
the payload is the same JSON envelope our bus writes, but raw never parses it.
ours: the bus publishes the same events, either as concurrent `publish()` calls (gathered
500 at a time, batched by the bus's group commit) or as `publish_many()` of 500, then
consumes them with `read(count=500)` + `ack`, parsing every envelope into an Event.
End-to-end is events / (publish time + consume time). Each figure is the median of runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from llmdocs.core.config import Settings
from llmdocs.core.events import Event, EventBus
from llmdocs.core.events.redis import RedisEventBus, StreamReply
from llmdocs.devservers import RedisServer

BATCH = 500
Phases = tuple[float, float]  # seconds to publish, seconds to consume


def make_events(count: int, size: int) -> list[Event]:
    """Events whose JSON envelope is about `size` bytes."""
    empty = len(Event(source="llmdocs/bench", type="llmdocs.bench.happened",
                      data={"text": ""}).model_dump_json())
    text = "x" * max(0, size - empty)
    return [Event(source="llmdocs/bench", type="llmdocs.bench.happened", data={"text": text})
            for _ in range(count)]


async def raw(url: str, events: Sequence[Event]) -> Phases:
    client = aioredis.from_url(url)
    await client.flushall()
    stream = "bench.raw"
    payloads = [event.model_dump_json() for event in events]
    started = time.perf_counter()
    for start in range(0, len(payloads), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for payload in payloads[start:start + BATCH]:
                pipe.xadd(stream, {"event": payload})
            await pipe.execute()
    published = time.perf_counter()
    await client.xgroup_create(stream, "bench", id="0")
    got = 0
    while got < len(payloads):
        reply = cast(StreamReply, await client.xreadgroup("bench", "c", {stream: ">"},
                                                          count=BATCH, block=1000))
        assert reply, "events were published: the stream cannot be empty"
        entries = reply[0][1]
        await client.xack(stream, "bench", *(entry_id for entry_id, _ in entries))
        got += len(entries)
    consumed = time.perf_counter()
    await client.aclose()
    return published - started, consumed - published


async def publish_concurrently(bus: EventBus, events: Sequence[Event]) -> None:
    for start in range(0, len(events), BATCH):
        await asyncio.gather(*(bus.publish(event) for event in events[start:start + BATCH]))


async def publish_in_batches(bus: EventBus, events: Sequence[Event]) -> None:
    for start in range(0, len(events), BATCH):
        await bus.publish_many(events[start:start + BATCH])


async def ours(url: str, events: Sequence[Event],
               publish: Callable[[EventBus, Sequence[Event]], Awaitable[None]]) -> Phases:
    client = aioredis.from_url(url)
    await client.flushall()
    await client.aclose()
    with tempfile.TemporaryDirectory() as data_dir:
        bus = RedisEventBus(url, Settings(data_dir=Path(data_dir), events_stream="bench.ours"))
        await bus.start()
        started = time.perf_counter()
        await publish(bus, events)
        published = time.perf_counter()
        got = 0
        while got < len(events):
            deliveries = await bus.read("bench", "c", count=BATCH)
            await bus.ack(deliveries)
            got += len(deliveries)
        consumed = time.perf_counter()
        assert bus.spool.pending == 0, "the bench must not measure the spool"
        await bus.close()
    return published - started, consumed - published


def rates(count: int, runs: list[Phases]) -> tuple[float, float, float]:
    """Median events/s for publish, consume and end-to-end."""
    return (statistics.median(count / p for p, _ in runs),
            statistics.median(count / c for _, c in runs),
            statistics.median(count / (p + c) for p, c in runs))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=500, help="envelope bytes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    events = make_events(args.events, args.size)
    server = RedisServer().start()
    try:
        contenders: dict[str, Callable[[], Awaitable[Phases]]] = {
            "raw redis-py": lambda: raw(server.url, events),
            "ours, publish() x500 gathered": lambda: ours(server.url, events,
                                                          publish_concurrently),
            "ours, publish_many(500)": lambda: ours(server.url, events, publish_in_batches),
        }
        results: dict[str, list[Phases]] = {name: [] for name in contenders}
        for _ in range(args.runs):  # interleaved, so drift hits every contender alike
            for name, run in contenders.items():
                results[name].append(await run())
    finally:
        server.cleanup()

    size = len(events[0].model_dump_json())
    print(f"{args.events} events of {size} bytes, median of {args.runs} runs, events/s")
    print(f"{'':32}{'publish':>12}{'consume':>12}{'end-to-end':>12}")
    table = {name: rates(args.events, runs) for name, runs in results.items()}
    for name, (publish, consume, both) in table.items():
        print(f"{name:32}{publish:>12,.0f}{consume:>12,.0f}{both:>12,.0f}")
    base = table["raw redis-py"]
    for name, figures in table.items():
        if name != "raw redis-py":
            ratio = "  ".join(f"{label} {ours / raw:.0%}" for label, ours, raw
                              in zip(("publish", "consume", "end-to-end"), figures, base,
                                     strict=True))
            print(f"{name} / raw: {ratio}")


if __name__ == "__main__":
    asyncio.run(main())
