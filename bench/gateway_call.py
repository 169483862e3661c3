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
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from detector import prompts  # noqa: E402
from llmdocs.core.auth import issue_token  # noqa: E402
from llmdocs.core.config import SERVICE_NAMES, Settings  # noqa: E402
from llmdocs.devservers import _wait_port, free_port  # noqa: E402
from llmdocs.services.gateway.client import GatewayClient  # noqa: E402
from workflow.fakellm import provider_env  # noqa: E402


async def per_call(call: Callable[[int], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(CPU, wall) microseconds per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        await call(i)
    return ((time.process_time() - cpu) / calls * 1e6,
            (time.perf_counter() - wall) / calls * 1e6)


async def measure(args: argparse.Namespace, upstream: str) -> None:
    from llmdocs.runtime import up
    from llmdocs.services import resolve

    os.environ.update(provider_env(upstream))
    os.environ["LLMDOCS_DISCOVERY_DISCOVER_ON_START"] = "false"
    data = Path(tempfile.mkdtemp(prefix="llmdocs-bench-"))
    settings = Settings(data_dir=data, jwt_secret=SecretStr("b" * 48), log_level="WARNING",
                        log_format="console").model_copy(
        update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    ready, stop = asyncio.Event(), asyncio.Event()
    eco = asyncio.create_task(up(settings, [resolve("gateway")], on_ready=ready.set,
                                 stop_when=stop))
    await ready.wait()
    texts = prompts(args.calls // 4 + 1)
    stamp = iter(range(10**9))
    try:
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
    finally:
        stop.set()
        await eco
        shutil.rmtree(data, ignore_errors=True)
    cpu = {k: statistics.median(c for c, _ in v) for k, v in rows.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in rows.items()}
    print(f"{args.calls} sequential calls x {args.rounds} rounds; us per call (median)")
    print(f"{'':28} {'CPU':>8} {'wall':>8}")
    print(f"{'GET /v1/models (floor)':28} {cpu['floor']:8.0f} {wall['floor']:8.0f}")
    print(f"{'POST /query':28} {cpu['query']:8.0f} {wall['query']:8.0f}")
    print(f"{'query minus floor':28} {cpu['query'] - cpu['floor']:8.0f} "
          f"{wall['query'] - wall['floor']:8.0f}   query/floor CPU "
          f"{cpu['query'] / cpu['floor']:.2f}")


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
        _wait_port(port)
        asyncio.run(measure(args, f"http://127.0.0.1:{port}"))
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
