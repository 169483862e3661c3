"""Overhead of the llm-gateway against a direct call and against the LiteLLM proxy.

    .venv/bin/python bench/gateway.py [--sequential 2000] [--seconds 5] [--rounds 3]
                                      [--rss 100000] [--no-litellm]

One run on this machine, each server in its own process with one worker, all in front of
the same fake OpenAI-compatible upstream that answers at once (a raw asyncio server):
(a) direct to the upstream, (b) through the gateway, (c) through the LiteLLM proxy, which
the script installs with pip into its own venv under bench/.litellm-venv (git-ignored).
Prints added latency p50/p99 over sequential requests, throughput at 32 concurrent
connections (the median of rounds that take turns between the targets), the gateway's
cache-hit latency, its RSS after 10,000 and 100,000 requests, and a summary against the
goals. The gateway runs with caching bypassed (Cache-Control: no-cache) except in the
cache-hit figure, with unique prompts for the RSS figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port, wait_port

HERE = Path(__file__).resolve().parent
LITELLM_VENV = HERE / ".litellm-venv"
SECRET = "bench-" + "s" * 40
LITELLM_KEY = "sk-" + "0123456789abcdef" * 4  # its master key; it refuses to start without
ANSWER = json.dumps({
    "id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()


# ---- the fake upstream: minimal HTTP/1.1 keep-alive server ------------------------------

class _Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            body = ANSWER if head.startswith(b"POST") else b'{"object":"list","data":[]}'
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
                                 + body)


def run_upstream(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def run_gateway(port: int, upstream: str, data_dir: str) -> None:
    import uvicorn

    from llmdocs.services import create_app
    from llmdocs.services.gateway.settings import GatewaySettings, ProviderConfig

    # thousands of requests a second from one user: counted, as always, but never refused
    settings = Settings(data_dir=Path(data_dir), jwt_secret=SecretStr(SECRET),
                        log_level="WARNING", rate_limit_per_minute=10**9)
    app = create_app("gateway", settings)
    app.state.gateway_settings = GatewaySettings(providers=[ProviderConfig(
        name="upstream", kind="openai", base_url=upstream, models={"bench": "bench"})])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- a lean client: raw keep-alive HTTP/1.1 over asyncio streams ------------------------

class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Conn:
    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.port, self.path, self.headers = port, path, headers

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def post(self, body: bytes, extra: str = "") -> float:
        head = (f"POST {self.path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + extra + "\r\n")
        started = time.perf_counter()
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw.split(b" ", 2)[1])
        length = 0
        for line in raw.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"status {status}")
        return time.perf_counter() - started

    def close(self) -> None:
        self.writer.close()


def body(i: int | None = None) -> bytes:
    text = "ping" if i is None else f"ping {i}"
    return json.dumps({"model": "bench", "max_tokens": 8,
                       "messages": [{"role": "user", "content": text}]}).encode()


async def sequential(target: Conn, n: int, extra: str = "", unique: bool = False) -> list[float]:
    conn = await Conn(target.port, target.path, target.headers).open()
    for i in range(50):  # warm up
        await conn.post(body(i if unique else None), extra)
    out = [await conn.post(body(i + 50 if unique else None), extra) for i in range(n)]
    conn.close()
    return out


async def throughput(target: Conn, seconds: float, extra: str = "") -> float:
    conns = [await Conn(target.port, target.path, target.headers).open() for _ in range(32)]
    payload = body()
    return await closed_loop(conns, lambda conn: conn.post(payload, extra), seconds)


async def closed_loop(conns: Sequence[C], send: Callable[[C], Awaitable[object]],
                      seconds: float) -> float:
    """Requests per second, each connection sending its next once answered; closes them."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(conn: C) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await send(conn)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return done / elapsed


async def run_many(target: Conn, n: int, start: int) -> None:
    conns = [await Conn(target.port, target.path, target.headers).open() for _ in range(8)]

    async def worker(k: int) -> None:
        for i in range(start + k, start + n, 8):
            await conns[k].post(body(i))

    await asyncio.gather(*(worker(k) for k in range(8)))
    for conn in conns:
        conn.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


# ---- LiteLLM ------------------------------------------------------------------------

def litellm_binary() -> Path:
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print("installing the LiteLLM proxy into", LITELLM_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q",
                        "litellm[proxy]"], check=True)
    return binary


def start_litellm(port: int, upstream: str, tmp: str) -> subprocess.Popen[bytes]:
    config = Path(tmp) / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n"
        f"      model: openai/bench\n      api_base: {upstream}\n      api_key: sk-x\n"
        "litellm_settings:\n  telemetry: false\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n")
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    return subprocess.Popen([str(litellm_binary()), "--config", str(config), "--port",
                             str(port), "--host", "127.0.0.1", "--num_workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def bench(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="llmdocs-bench-")
    up_port, gw_port, ll_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    processes = [spawn("--serve-upstream", str(up_port))]
    processes.append(spawn("--serve-gateway", str(gw_port), upstream_url, tmp))
    if args.litellm:
        processes.append(start_litellm(ll_port, upstream_url, tmp))
    try:
        wait_port(up_port)
        wait_port(gw_port, 60)
        settings = Settings(data_dir=Path(tmp), jwt_secret=SecretStr(SECRET))
        token = issue_token(settings, "user:bench", ["llm:*"], ttl_seconds=3600)
        auth = {"authorization": f"Bearer {token}"}
        targets = {
            "direct": Conn(up_port, "/v1/chat/completions", {}),
            "gateway": Conn(gw_port, "/v1/chat/completions", auth),
        }
        if args.litellm:
            wait_port(ll_port, 180)
            targets["litellm"] = Conn(ll_port, "/v1/chat/completions",
                                      {"authorization": f"Bearer {LITELLM_KEY}"})
        nocache = "cache-control: no-cache\r\n"
        latency: dict[str, list[float]] = {name: [] for name in targets}
        rates: dict[str, list[float]] = {name: [] for name in targets}
        hits: list[float] = []
        # rounds take turns, so a slow moment of this machine hits every target alike
        for _ in range(args.rounds):
            for name, target in targets.items():
                extra = nocache if name == "gateway" else ""
                latency[name] += await sequential(target, args.sequential, extra)
                rates[name].append(await throughput(target, args.seconds, extra))
            hits += await sequential(targets["gateway"], args.sequential)  # identical: cache
        rate = {name: statistics.median(values) for name, values in rates.items()}
        direct50, direct99 = pct(latency["direct"], 0.5), pct(latency["direct"], 0.99)
        print(f"\nload average at start {load[0]:.2f}, now {os.getloadavg()[0]:.2f} "
              f"({os.cpu_count()} CPUs): this machine is shared, figures are noisy")
        print(f"sequential: {args.rounds} x {args.sequential} requests each; throughput: "
              f"32 connections, median of {args.rounds} x {args.seconds:.0f} s")
        print(f"{'':10}{'p50 ms':>10}{'p99 ms':>10}{'added p50':>11}{'added p99':>11}"
              f"{'req/s @32':>11}")
        for name in targets:
            p50, p99 = pct(latency[name], 0.5), pct(latency[name], 0.99)
            print(f"{name:10}{p50:10.3f}{p99:10.3f}{p50 - direct50:11.3f}"
                  f"{p99 - direct99:11.3f}{rate[name]:11.0f}")
        print(f"{'cache hit':10}{pct(hits, 0.5):10.3f}{pct(hits, 0.99):10.3f}")
        added = pct(latency["gateway"], 0.5) - direct50
        goals: list[tuple[str, str, str, bool | None]] = [
            ("gateway added latency p50", f"{added:.3f} ms", "<= 1 ms", added <= 1.0),
            ("gateway cache hit p50", f"{pct(hits, 0.5):.3f} ms", "<= 1 ms",
             pct(hits, 0.5) <= 1.0)]
        if "litellm" in rate:
            ratio = rate["gateway"] / rate["litellm"]
            goals.append(("throughput gateway/litellm", f"{ratio:.1f}x", ">= 5x", ratio >= 5))
            added_ll = pct(latency["litellm"], 0.5) - direct50
            goals.append(("added p50 litellm/gateway", f"{added_ll / added:.1f}x", "", None))
        if args.rss:
            gateway_pid = processes[1].pid
            await run_many(targets["gateway"], 10_000, 1_000_000)
            at_10k = rss_mb(gateway_pid)
            await run_many(targets["gateway"], args.rss - 10_000, 2_000_000)
            at_end = rss_mb(gateway_pid)
            growth = 100 * (at_end / at_10k - 1)
            goals.append((f"RSS 10k -> {args.rss // 1000}k requests",
                          f"{at_10k:.1f} -> {at_end:.1f} MB, {growth:+.1f}%", "<= 5%",
                          growth <= 5))
        print(f"\n{'summary':28}{'measured':>26}  {'goal':8}")
        for label, measured, goal, met in goals:
            verdict = "" if met is None else ("met" if met else "NOT MET")
            print(f"{label:28}{measured:>26}  {goal:8}{verdict}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss", type=int, default=100_000,
                        help="requests for the RSS figure (0 skips it)")
    parser.add_argument("--no-litellm", dest="litellm", action="store_false")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        run_upstream(args.serve_upstream)
    elif args.serve_gateway:
        port, upstream, data_dir = args.serve_gateway
        run_gateway(int(port), upstream, data_dir)
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
