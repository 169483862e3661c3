"""Log-collector benchmark: sustained ingest through the bus, and correlation queries
over a large store.

    .venv/bin/python bench/logcollector.py [--events 20000] [--records 1000000]
                                           [--database-url URL]

ingest: events are published in batches of 500 onto the SQL bus while the collector's
own consumer group (the same handler its lifespan subscribes) stores them. Figures:
events/s from the first publish to the last stored, and lag p50/p99 (stored time minus
publish time). Baseline, same run and bus: a consumer group that only acks (no storage).

correlation: `--records` log records (plus one event per 10 records) are bulk inserted,
spread over correlation ids of ~100 records each; then 200 random `GET
/correlations/{id}` lookups through `LogStore.correlation` (the endpoint's code: both
tables, merge, models). Baseline: the same two indexed SELECTs as raw SQL rows.
A warm-up pass runs both first, so neither pays for cold pages the other warmed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from llmdocs.core.config import Settings
from llmdocs.core.db import utcnow
from llmdocs.core.events import Event
from llmdocs.core.ids import new_id
from llmdocs.core.resources import Resources
from llmdocs.migrations import upgrade
from llmdocs.services.logcollector.models import CollectedEvent, CollectedLog
from llmdocs.services.logcollector.schemas import LogIn
from llmdocs.services.logcollector.service import LogStore

BATCH = 500
PER_CORRELATION = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drain(res: Resources, group: str, count: int,
                handle: Callable[[Event], Awaitable[None]]) -> float:
    """Publish `count` events while `group` consumes them; seconds until all handled."""
    done = asyncio.Event()
    seen = 0

    async def handler(event: Event) -> None:
        nonlocal seen
        await handle(event)
        seen += 1
        if seen >= count:
            done.set()

    stream = f"bench.{group}"
    subscription = res.events.subscribe(group, handler, stream=stream)
    started = time.perf_counter()
    for _ in range(0, count, BATCH):
        await res.events.publish_many(
            [Event(source="llmdocs/bench", type="llmdocs.bench.happened",
                   correlationid=new_id(), data={"n": i}) for i in range(BATCH)],
            stream=stream)
    await done.wait()
    elapsed = time.perf_counter() - started
    await subscription.stop()
    return elapsed


async def ingest(res: Resources, store: LogStore, count: int) -> None:
    async def nothing(event: Event) -> None:
        return None

    async def keep(event: Event) -> None:
        await store.add_events([event])

    raw = await drain(res, "bench-ack-only", count, nothing)
    ours = await drain(res, "logcollector", count, keep)
    async with res.database.session() as session:
        rows = (await session.execute(select(CollectedEvent.time, CollectedEvent.received_at)
                                      )).all()
    lags = [(received - sent).total_seconds() * 1000 for sent, received in rows]
    print(f"ingest of {count} events through the bus ({res.database.dialect}):")
    print(f"  ack-only consumer (baseline) {count / raw:10.0f} events/s")
    print(f"  collector (stores each)      {count / ours:10.0f} events/s   "
          f"ratio {ours / raw:.2f}x the baseline time")
    print(f"  lag p50 {percentile(lags, 0.5):.0f} ms, p99 {percentile(lags, 0.99):.0f} ms "
          "(publish → stored, while the publisher runs at full speed)")


async def fill(store: LogStore, records: int) -> list[str]:
    """Bulk insert through the store's own idempotent insert path, 10 000 rows a call."""
    correlations = [new_id() for _ in range(max(1, records // PER_CORRELATION))]
    base = utcnow() - timedelta(days=1)
    chunk = 10_000
    started = time.perf_counter()
    for start in range(0, records, chunk):
        logs = [LogIn(id=f"l{i}", service=f"svc{i % 7}", level="info",
                      message=f"record {i} of the benchmark", time=base + timedelta(
                          milliseconds=i), correlation_id=correlations[i % len(correlations)])
                for i in range(start, min(records, start + chunk))]
        await store.add_logs(logs)
        await store.add_events([Event(id=f"e{i}", source=f"llmdocs/svc{i % 7}",
                                      type="llmdocs.bench.happened", time=base + timedelta(
                                          milliseconds=i),
                                      correlationid=correlations[i % len(correlations)])
                                for i in range(start, min(records, start + chunk), 10)])
    elapsed = time.perf_counter() - started
    print(f"bulk insert of {records} log records + {records // 10} events: {elapsed:.1f} s "
          f"({records * 1.1 / elapsed:.0f} rows/s)")
    return correlations


async def correlate(res: Resources, store: LogStore, correlations: list[str]) -> None:
    picks = random.Random(7).sample(correlations, min(200, len(correlations)))
    ours, raw = [], []
    sql_logs = text("SELECT * FROM logcollector_logs WHERE correlation_id = :c ORDER BY time")
    sql_events = text("SELECT * FROM logcollector_events WHERE correlation_id = :c "
                      "ORDER BY time")
    async def raw_query(cid: str) -> None:
        async with res.database.session() as session:
            (await session.execute(sql_logs, {"c": cid})).all()
            (await session.execute(sql_events, {"c": cid})).all()

    for cid in picks:  # warm both paths' pages and statements before measuring either
        await raw_query(cid)
        found = await store.correlation(cid)
    for cid in picks:
        started = time.perf_counter()
        await raw_query(cid)
        raw.append((time.perf_counter() - started) * 1000)
    for cid in picks:
        started = time.perf_counter()
        found = await store.correlation(cid)
        ours.append((time.perf_counter() - started) * 1000)
    async with res.database.session() as session:
        total = await session.scalar(select(func.count()).select_from(CollectedLog))
    print(f"correlation query over {total} stored log records "
          f"({found.count} records per id, {len(picks)} ids):")
    print(f"  raw SQL rows (baseline)  p50 {statistics.median(raw):7.2f} ms")
    print(f"  LogStore.correlation     p50 {statistics.median(ours):7.2f} ms   "
          f"ratio {statistics.median(ours) / statistics.median(raw):.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url,
                            jwt_secret="bench-" + "x" * 40)  # type: ignore[arg-type]
        res = Resources.from_settings(settings)
        await res.open(upgrade)
        try:
            store = LogStore(res.database)
            await ingest(res, store, args.events)
            await correlate(res, store, await fill(store, args.records))
        finally:
            await res.close()


if __name__ == "__main__":
    asyncio.run(main())
