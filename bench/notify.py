"""Events to delivered webhooks per second, and event-to-delivery latency, of the
notification service, beside a bare consumer that only acks.

The notification service runs embedded (this process, a temporary SQLite database), with
`--subscriptions` webhook subscriptions (8) to one event type, each pointing at a local
receiver (a bare ASGI app on uvicorn) that checks nothing and answers 204. The rate
limit is lifted and grouping is off (the events are not alerts), so every event is one
signed webhook per subscription. `--events` events (300) are published on the bus, in
batches of 50 as fast as the bus takes them, or paced at `--rate` events/s (ten batches
a second), each carrying the moment it was published.

The baseline, in the same run on the same events, is a consumer of its own group on the
same bus whose handler only notes the time: the bus's share of the latency.
Printed: events/s and webhooks/s (from the first publish to the last arrival), latency
p50 and p99 (publish to webhook arrival / to the bare handler), and the ratios.

Usage: .venv/bin/python bench/notify.py [--events 300] [--subscriptions 8] [--rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn

from embedded import embedded
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events import Event
from llmdocs.core.events.factory import create_event_bus
from llmdocs.devservers import free_port
from llmdocs.runtime import Server

TYPE = "llmdocs.bench.happened"
BATCH = 50
GUARD = 600.0  # seconds: a hang guard, not a bound


class Arrivals:
    """When each (event, receiver) arrived, by the event's publish stamp."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last = 0.0
        self.done = asyncio.Event()
        self.expected = 0

    def note(self, published: float) -> None:
        self.last = time.perf_counter()
        self.latencies.append(self.last - published)
        if len(self.latencies) >= self.expected:
            self.done.set()


def receiver(arrivals: Arrivals) -> Callable[..., Awaitable[None]]:
    """A webhook receiver that only reads the publish stamp and answers 204."""

    async def app(scope: dict[str, Any], receive: Callable[..., Awaitable[dict[str, Any]]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrivals.note(json.loads(body)["data"]["published"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def subscribe(settings: Settings, url: str, count: int) -> None:
    token = issue_token(settings, "user:bench", ("notifications:read", "notifications:write"))
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    async with httpx.AsyncClient(base_url=settings.url_for("notification"), timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(count):
            made = await http.post("/subscriptions", json={
                "events": [TYPE], "channel": {"kind": "webhook", "url": url,
                                              "secret": secret}})
            made.raise_for_status()


async def measure(args: argparse.Namespace) -> tuple[Arrivals, Arrivals, float]:
    os.environ.update({"LLMDOCS_NOTIFICATION_RATE_LIMIT": "1000000000",
                       "LLMDOCS_NOTIFICATION_GROUP_WINDOW_SECONDS": "0"})
    hooks, bare = Arrivals(), Arrivals()
    hooks.expected, bare.expected = args.events * args.subscriptions, args.events
    port = free_port()
    server = Server(uvicorn.Config(receiver(hooks), host="127.0.0.1", port=port,
                                   log_config=None, access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    async with embedded(["notification"]) as settings:
        await subscribe(settings, f"http://127.0.0.1:{port}/hook", args.subscriptions)
        database = Database(settings.database_url)
        bus = create_event_bus(settings, database)
        await bus.start()

        async def only_ack(event: Event) -> None:
            bare.note(event.data["published"])

        consumer = bus.subscribe("bench-bare", only_ack, types=[TYPE])
        # paced: ten batches a second; a burst: batches of BATCH as fast as they go
        batch = max(1, int(args.rate / 10)) if args.rate else BATCH
        started = time.perf_counter()
        for first in range(0, args.events, batch):
            now = time.perf_counter()
            await bus.publish_many([
                Event(source="llmdocs/bench", type=TYPE, data={"published": now, "n": i})
                for i in range(first, min(first + batch, args.events))])
            if args.rate:
                await asyncio.sleep(max(0.0, started + (first + batch) / args.rate
                                        - time.perf_counter()))
        async with asyncio.timeout(GUARD):
            await asyncio.gather(hooks.done.wait(), bare.done.wait())
        await consumer.stop()
        await bus.close()
        await database.dispose()
    server.should_exit = True
    await serving
    return hooks, bare, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--subscriptions", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: a burst")
    args = parser.parse_args()
    hooks, bare, started = asyncio.run(measure(args))

    print(f"{args.events} events, {args.subscriptions} webhook subscriptions, "
          f"{'a burst' if not args.rate else f'{args.rate:g} events/s'}, embedded (SQLite)")
    print(f"{'':24}{'events/s':>10}{'deliveries/s':>14}{'p50 ms':>10}{'p99 ms':>10}")
    rows = {}
    for name, arrivals, per_event in (("notification webhooks", hooks, args.subscriptions),
                                      ("bare consumer (ack)", bare, 1)):
        elapsed = arrivals.last - started
        rows[name] = (args.events / elapsed, args.events * per_event / elapsed,
                      percentile(arrivals.latencies, 0.5) * 1000,
                      percentile(arrivals.latencies, 0.99) * 1000)
        events, delivered, p50, p99 = rows[name]
        print(f"{name:24}{events:>10,.1f}{delivered:>14,.1f}{p50:>10,.1f}{p99:>10,.1f}")
    ours, base = rows["notification webhooks"], rows["bare consumer (ack)"]
    print(f"notification / bare: events/s {ours[0] / base[0]:.1%}  "
          f"p50 {ours[2] / base[2]:.1f}x  p99 {ours[3] / base[3]:.1f}x")


if __name__ == "__main__":
    main()
