"""CPU of one llm-gateway `POST /query` made in-process, as the orchestrator makes it.

    .venv/bin/python bench/gateway_call.py [--calls 300] [--rounds 5]

The gateway runs embedded (`llmdocs up` with the gateway alone, on a temporary SQLite
database) in front of a fake OpenAI-compatible upstream in a process of its own (the raw
asyncio server of bench/gateway.py, which answers at once), so this process's CPU time is
the caller's and the gateway's. Calls are sequential, through the GatewayClient, with
prompts like the workflow's section prompts (2 KB, most lines repeated, the query line
new every time so that no answer comes from the cache). The baseline, measured in the
same run with the same client, is an authenticated call that does nothing
(`GET /v1/models`): the floor of an in-process call. Prints the median over rounds of the
CPU and wall microseconds per call, and the gateway's own part (query minus floor).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detector import prompts  # noqa: E402
from embedded import embedded  # noqa: E402
from llmdocs.core.auth import issue_token  # noqa: E402
from llmdocs.core.config import Settings  # noqa: E402
from llmdocs.devservers import free_port, wait_port  # noqa: E402
from llmdocs.services.gateway.client import GatewayClient  # noqa: E402


async def per_call(call: Callable[[int], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(CPU, wall) microseconds per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        await call(i)
    return ((time.process_time() - cpu) / calls * 1e6,
            (time.perf_counter() - wall) / calls * 1e6)


async def measure(args: argparse.Namespace, upstream: str) -> None:
    async with embedded(["gateway"], upstream) as settings:
        rows = await rounds(args, settings)
    cpu = {k: statistics.median(c for c, _ in v) for k, v in rows.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in rows.items()}
    print(f"{args.calls} sequential calls x {args.rounds} rounds; us per call (median)")
    print(f"{'':28} {'CPU':>8} {'wall':>8}")
    print(f"{'GET /v1/models (floor)':28} {cpu['floor']:8.0f} {wall['floor']:8.0f}")
    print(f"{'POST /query':28} {cpu['query']:8.0f} {wall['query']:8.0f}")
    print(f"{'query minus floor':28} {cpu['query'] - cpu['floor']:8.0f} "
          f"{wall['query'] - wall['floor']:8.0f}   query/floor CPU "
          f"{cpu['query'] / cpu['floor']:.2f}")


async def rounds(args: argparse.Namespace, settings: Settings
                 ) -> dict[str, list[tuple[float, float]]]:
    texts = prompts(args.calls // 4 + 1)
    stamp = iter(range(10**9))
    async with GatewayClient.for_service(
            settings, token=issue_token(settings, "user:bench", ["*"])) as gateway:
        async def query(i: int) -> Any:
            prompt = f"call {next(stamp)}\n" + texts[i % len(texts)]
            return await gateway.query(prompt, max_tokens=16)

        async def floor(i: int) -> Any:
            return await gateway.request("GET", "/v1/models", idempotent=False)

        await per_call(query, 100)  # warm caches, connections, the detector's lines
        await per_call(floor, 100)
        rows: dict[str, list[tuple[float, float]]] = {"query": [], "floor": []}
        for _ in range(args.rounds):
            rows["floor"].append(await per_call(floor, args.calls))
            rows["query"].append(await per_call(query, args.calls))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "gateway.py"),
                                 "--serve-upstream", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        asyncio.run(measure(args, f"http://127.0.0.1:{port}"))
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
