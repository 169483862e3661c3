"""What MCP costs a documentation read: `search_documents` and `get_document` through the
interpreter's streamable-HTTP `/mcp` (the official MCP client, one open session) against
the doc-store's own `GET /search` and `GET /documents/{id}` (httpx, one keep-alive
connection), in the same run.

    .venv/bin/python bench/mcp_vs_http.py [--requests 500] [--documents 50]

(Not bench/mcp.py: a script's folder comes first on sys.path, so a bench/mcp.py would be
what `import mcp` finds — in this script and in every other bench script that starts the
services, since the interpreter serves MCP.)

The services are one `llmdocs up` process (embedded: the interpreter calls the doc-store
in process) with its own data dir and ports. The two paths take turns in blocks of 20
requests, so a slow moment of this shared machine hits both alike. Prints p50/p95 per
path and the MCP/HTTP ratios; the goal: MCP <= 1.5x the doc-store's p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from gateway import pct
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port, wait_port

SECRET = "bench-" + "m" * 40
BLOCK = 20
SERVICES = ("docstore", "interpreter", "orchestrator", "gateway", "promptstore")
GOAL = 1.5


def up(tmp: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LLMDOCS_DATA_DIR": str(tmp), "LLMDOCS_JWT_SECRET": SECRET,
           "LLMDOCS_LOG_LEVEL": "WARNING",
           **{f"LLMDOCS_{k.upper()}_PORT": str(p) for k, p in ports.items()}}
    args = [a for key in SERVICES for a in ("-s", key)]
    return subprocess.Popen([sys.executable, "-m", "llmdocs", "up", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)


async def timed(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def bench(args: argparse.Namespace, settings: Settings, ports: dict[str, int]) -> None:
    token = issue_token(settings, "user:bench", ["*"], ttl_seconds=3600)
    auth = {"Authorization": f"Bearer {token}"}
    docstore = f"http://127.0.0.1:{ports['docstore']}"
    mcp_url = f"http://127.0.0.1:{ports['interpreter']}/mcp"
    load = os.getloadavg()
    async with httpx.AsyncClient(base_url=docstore, headers=auth, timeout=60) as http:
        ids = []
        for i in range(args.documents):
            stored = await http.post("/documents", json={
                "title": f"bench {i}", "format": "markdown",
                "content": f"# Widget {i}\n\nHow to configure the widget number {i}."})
            stored.raise_for_status()
            ids.append(stored.json()["document_id"])
        doc = ids[len(ids) // 2]

        async def http_search() -> None:
            (await http.get("/search", params={"q": "widget configure", "limit": 10})
             ).raise_for_status()

        async def http_get() -> None:
            (await http.get(f"/documents/{doc}")).raise_for_status()

        async with (httpx2.AsyncClient(headers=auth, timeout=60) as client,
                    streamable_http_client(mcp_url, http_client=client) as (read, write),
                    ClientSession(read, write) as session):
            await session.initialize()

            async def mcp_search() -> None:
                result = await session.call_tool("search_documents",
                                                 {"query": "widget configure", "limit": 10})
                assert not result.is_error, result.content

            async def mcp_get() -> None:
                result = await session.call_tool("get_document", {"id": doc})
                assert not result.is_error, result.content

            paths = {"search http": http_search, "search mcp": mcp_search,
                     "get http": http_get, "get mcp": mcp_get}
            latency: dict[str, list[float]] = {name: [] for name in paths}
            for call in paths.values():
                await timed(call, BLOCK)  # warm up
            for _ in range(max(1, args.requests // BLOCK)):
                for name, call in paths.items():
                    latency[name] += await timed(call, BLOCK)
    print(f"\nload average at start {load[0]:.2f}, now {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs): this machine is shared, figures are noisy")
    print(f"{args.requests} requests per path, sequential, in turns of {BLOCK}; "
          f"{args.documents} documents stored")
    print(f"{'':14}{'p50 ms':>9}{'p95 ms':>9}")
    for name, values in latency.items():
        print(f"{name:14}{pct(values, 0.5):9.2f}{pct(values, 0.95):9.2f}")
    print(f"\n{'mcp / http':14}{'p50':>9}{'p95':>9}  goal: p50 <= {GOAL}")
    for tool in ("search", "get"):
        mcp, plain = latency[f"{tool} mcp"], latency[f"{tool} http"]
        ratio = pct(mcp, 0.5) / pct(plain, 0.5)
        print(f"{tool:14}{ratio:9.2f}{pct(mcp, 0.95) / pct(plain, 0.95):9.2f}  "
              f"{'met' if ratio <= GOAL else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--documents", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmdocs-bench-mcp-"))
    ports = {key: free_port() for key in (*SERVICES, "analysis", "discovery", "logcollector",
                                          "notification", "web")}
    process = up(tmp, ports)
    try:
        for key in SERVICES:
            wait_port(ports[key], 180)
        asyncio.run(bench(args, Settings(data_dir=tmp, jwt_secret=SecretStr(SECRET)), ports))
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
