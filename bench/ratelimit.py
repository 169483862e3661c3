"""The per-principal rate limiter's cost on a fast authenticated route, limiter on vs off.

    .venv/bin/python bench/ratelimit.py [--requests 300] [--rounds 10]

Three doc-stores run in this process on loopback (uvicorn, SQLite in a temporary data
dir), alike but for their limits: `off` (LLMDOCS_RATE_LIMIT_PER_MINUTE=0), `local` (a
limit no request reaches, counted in-process) and `redis` (the same, counted in a Redis
on loopback, llmdocs.devservers). One keep-alive client per doc-store sends
`GET /info` (authenticated, touches no store) one request at a time: `--requests` per
doc-store and round, the doc-stores taking turns request by request (which goes first
rotates), so a busy machine slows all alike. Per doc-store: p50 and p95 latency over all
rounds and requests per second (the median over rounds); ratio = p50 / off's p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
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


async def timed(http: httpx.AsyncClient) -> float:
    """The latency of one `GET /info`, in seconds."""
    started = time.perf_counter()
    answer = await http.get("/info")
    took = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET /info answered {answer.status_code}: {answer.text}")
    return took


async def run(requests: int, rounds: int) -> None:
    redis = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Settings(data_dir=Path(tmp), jwt_secret=SecretStr("bench-" + "r" * 40),
                            log_level="WARNING", rate_limit_failures_per_minute=0)
            limits = {"off": {"rate_limit_per_minute": 0},
                      "local": {"rate_limit_per_minute": NEVER_REACHED},
                      "redis": {"rate_limit_per_minute": NEVER_REACHED,
                                "cache_url": redis.url}}
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
                latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
                rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
                for i in range(rounds):
                    took: dict[str, list[float]] = {name: [] for name in VARIANTS}
                    for j in range(requests):
                        for name in VARIANTS[(i + j) % 3:] + VARIANTS[:(i + j) % 3]:
                            took[name].append(await timed(clients[name]))
                    for name in VARIANTS:
                        latencies[name] += took[name]
                        rates[name].append(len(took[name]) / sum(took[name]))
                report(latencies, rates)
    finally:
        redis.cleanup()


def report(latencies: dict[str, list[float]], rates: dict[str, list[float]]) -> None:
    off = statistics.median(latencies["off"])
    print(f"{'limiter':8s} {'p50 ms':>8s} {'p95 ms':>8s} {'req/s':>8s} {'ratio':>6s}")
    for name in VARIANTS:
        p50 = statistics.median(latencies[name])
        p95 = statistics.quantiles(latencies[name], n=20)[-1]
        print(f"{name:8s} {p50 * 1000:8.3f} {p95 * 1000:8.3f} "
              f"{statistics.median(rates[name]):8.0f} {p50 / off:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
