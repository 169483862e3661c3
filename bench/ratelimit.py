"""The per-principal rate limiter's cost on a fast authenticated route, limiter on vs off.

    .venv/bin/python bench/ratelimit.py [--requests 300] [--rounds 10]

Three doc-stores run in this process on loopback (uvicorn, SQLite in a temporary data
dir), alike but for their limits: `off` (LLMDOCS_RATE_LIMIT_PER_MINUTE=0), `local` (a
limit no request reaches, counted in-process) and `redis` (the same, counted in a Redis
on loopback, llmdocs.devservers). One keep-alive client per doc-store sends
`GET /info` (authenticated, touches no store) one request at a time: `--requests` per
doc-store and round, the doc-stores taking turns request by request (which goes first
rotates), so a busy machine slows all alike. Per doc-store: p50 and p95 latency over all
rounds, requests per second (the median over rounds), the CPU time per request of this
process (client and doc-stores) and of Redis (its CPU over the run / the `redis`
doc-store's requests); the ratios are p50 / off's p50 and CPU / off's CPU. On a busy
machine the CPU figures are the ones to believe: latency there is mostly waiting for a
core, and a request doing a little more work waits disproportionately more.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import uvicorn
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import RedisServer, free_port
from llmdocs.runtime import Server
from llmdocs.services import create_app

NEVER_REACHED = 10**9  # requests a minute: counted, never refused
VARIANTS = ("off", "local", "redis")


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """A doc-store with these settings on a free loopback port, until the block ends."""
    port = free_port()
    server = Server(uvicorn.Config(create_app("docstore", settings), host="127.0.0.1",
                                   port=port, log_config=None, access_log=False,
                                   lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the doc-store stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def timed(http: httpx.AsyncClient) -> tuple[float, float]:
    """The wall and CPU time of this process (client and doc-store) of one `GET /info`."""
    started, cpu = time.perf_counter(), time.process_time()
    answer = await http.get("/info")
    took = time.perf_counter() - started, time.process_time() - cpu
    if answer.status_code != 200:
        raise RuntimeError(f"GET /info answered {answer.status_code}: {answer.text}")
    return took


@dataclass
class Figures:
    """One doc-store's measurements over all rounds."""

    latencies: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # requests per second, per round
    store_cpu: float = 0.0  # Redis's CPU seconds meanwhile


async def run(requests: int, rounds: int) -> None:
    redis = RedisServer().start()
    assert redis.process is not None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Settings(data_dir=Path(tmp), jwt_secret=SecretStr("bench-" + "r" * 40),
                            log_level="WARNING", rate_limit_failures_per_minute=0)
            limits: dict[str, dict[str, object]] = {
                "off": {"rate_limit_per_minute": 0},
                "local": {"rate_limit_per_minute": NEVER_REACHED},
                "redis": {"rate_limit_per_minute": NEVER_REACHED, "cache_url": redis.url}}
            token = issue_token(base, "user:bench", ["docs:*"])
            async with AsyncExitStack() as stack:
                clients = {}
                for name in VARIANTS:
                    settings = base.model_copy(update={
                        "data_dir": Path(tmp) / name, **limits[name]})
                    url = await stack.enter_async_context(served(settings))
                    clients[name] = await stack.enter_async_context(httpx.AsyncClient(
                        base_url=url, headers={"Authorization": f"Bearer {token}"}))
                for http in clients.values():  # warm-up: connections, caches, imports
                    for _ in range(50):
                        await timed(http)
                figures = {name: Figures() for name in VARIANTS}
                store = psutil.Process(redis.process.pid)
                store_cpu = sum(store.cpu_times()[:2])
                for i in range(rounds):
                    walls: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
                    for j in range(requests):
                        for name in VARIANTS[(i + j) % 3:] + VARIANTS[:(i + j) % 3]:
                            wall, cpu = await timed(clients[name])
                            figures[name].latencies.append(wall)
                            figures[name].cpu.append(cpu)
                            walls[name] += wall
                    for name in VARIANTS:
                        figures[name].rates.append(requests / walls[name])
                # only the `redis` doc-store asks Redis anything while requests are timed
                figures["redis"].store_cpu = sum(store.cpu_times()[:2]) - store_cpu
                report(figures)
    finally:
        redis.cleanup()


def report(figures: dict[str, Figures]) -> None:
    """Latency, throughput and CPU per request; the CPU figures are what a busy machine
    moves least (a request slowed by other processes' work costs no more CPU)."""
    off = figures["off"]
    p50_off, cpu_off = statistics.median(off.latencies), statistics.mean(off.cpu)
    print(f"{'limiter':8s} {'p50 ms':>8s} {'p95 ms':>8s} {'req/s':>8s} {'p50 ratio':>10s} "
          f"{'CPU µs':>8s} {'+Redis µs':>10s} {'CPU ratio':>10s}")
    for name, got in figures.items():
        p50 = statistics.median(got.latencies)
        p95 = statistics.quantiles(got.latencies, n=20)[-1]
        cpu = statistics.mean(got.cpu)
        store = got.store_cpu / len(got.cpu)
        print(f"{name:8s} {p50 * 1000:8.3f} {p95 * 1000:8.3f} "
              f"{statistics.median(got.rates):8.0f} {p50 / p50_off:10.2f} "
              f"{cpu * 1e6:8.0f} {store * 1e6:10.0f} {(cpu + store) / cpu_off:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    main()
