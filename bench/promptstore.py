"""Prompt lookups through the prompt-store client, beside a plain dict lookup.

    .venv/bin/python bench/promptstore.py [--lookups 20000] [--cold 500]

A real prompt-store (SQLite in a temp dir) is served by uvicorn on loopback.
warm: `PromptStoreClient.get(name)` answered from the client's cache.
cold: `PromptStoreClient.fetch(...)`, an HTTP round trip to the store (which resolves
the label through its own cache and publishes `llmdocs.prompt.used`).
A/B: `get(name, ab_subject=...)` with a running test (hash + two cache lookups), and the
bare `abtest.assign` hash, both against the dict lookup.
Baseline: `dict[(name, label, version)]` lookup of the same resolved object.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.runtime import Server
from llmdocs.services import create_app
from llmdocs.services.promptstore import abtest
from llmdocs.services.promptstore.client import PromptStoreClient
from llmdocs.services.promptstore.schemas import AbTestIn, PromptIn, VersionIn


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6)


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--cold", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), jwt_secret=SecretStr("bench-" + "x" * 40),
                            log_level="WARNING")
        port = free_port()
        server = Server(uvicorn.Config(create_app("promptstore", settings),
                                               host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn only offers the flag)
            await asyncio.sleep(0.01)
        token = issue_token(settings, "user:bench", ["prompts:*"])
        try:
            async with PromptStoreClient(f"http://127.0.0.1:{port}", token=token) as client:
                await run(client, args.lookups, args.cold)
        finally:
            server.should_exit = True
            await task


async def run(client: PromptStoreClient, lookups: int, cold: int) -> None:
    made = await client.create(PromptIn(name="bench", content="Write about {{ topic }}."))
    await client.add_version(made.id, VersionIn(content="Explain {{ topic }}."))
    resolved = await client.get("bench")
    table = {("bench", None, None): resolved}

    async def dict_lookup(_i: int) -> object:
        return table[("bench", None, None)]

    baseline = percentiles(await timed(lookups, dict_lookup))
    warm = percentiles(await timed(lookups, lambda _i: client.get("bench")))
    http = percentiles(await timed(cold, lambda _i: client.fetch(("bench", None, None))))
    by_id = percentiles(await timed(cold, lambda _i: client.prompt(made.id)))
    print(f"{'lookup':28} {'p50 us':>9} {'p99 us':>9} {'p50 x dict':>11}")
    for name, (p50, p99) in (("dict (baseline)", baseline), ("client, warm cache", warm),
                             ("client, cold (HTTP)", http),
                             ("GET /prompts/{id} (no event)", by_id)):
        print(f"{name:28} {p50:9.2f} {p99:9.2f} {p50 / baseline[0]:11.1f}")

    test = await client.create_test(AbTestIn(prompt="bench", name="bench", variants=[
        {"version": 1, "weight": 50}, {"version": 2, "weight": 50}], auto_stop=False))
    fresh = PromptStoreClient(client.base_url, token=client._token)
    async with fresh:
        await fresh.get("bench", ab_subject="warm-up")
        started = time.perf_counter()
        for i in range(lookups):
            await fresh.get("bench", ab_subject=f"user-{i}")
        ab_get = lookups / (time.perf_counter() - started)
    variants = [(1, 50.0), (2, 50.0)]
    started = time.perf_counter()
    for i in range(lookups):
        abtest.assign(test.id, f"user-{i}", variants)
    assign = lookups / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(lookups):
        table[("bench", None, None)]
    plain = lookups / (time.perf_counter() - started)
    print(f"\n{'A/B assignment':28} {'per second':>12} {'x dict':>9}")
    for name, rate in (("dict lookup (baseline)", plain), ("abtest.assign (hash)", assign),
                       ("client.get(ab_subject=...)", ab_get)):
        print(f"{name:28} {rate:12,.0f} {plain / rate:9.1f}")


if __name__ == "__main__":
    asyncio.run(main())
