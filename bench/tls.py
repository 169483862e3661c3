"""What mutual TLS costs a request: the doc-store and the llm-gateway, each served twice
in the same run, plain and with `LLMDOCS_TLS_DIR` (client certificates required).

    .venv/bin/python bench/tls.py [--sequential 2000] [--seconds 5] [--rounds 3]

Each server is a `llmdocs serve` process of its own (embedded SQLite, its own data dir);
the gateways answer through the same fake OpenAI-compatible upstream that answers at
once (bench/gateway.py's). The requests: the doc-store's `GET /documents/{id}` of a
small stored document, and the gateway's `POST /v1/chat/completions` with caching
bypassed. The client is a lean raw HTTP/1.1 one over keep-alive connections (with TLS, it
presents the CLI's certificate), so the figures are the servers' costs, not a client
library's. Prints, per target, p50/p95 latency over `--sequential` requests per round on
one open connection (the targets taking turns every 20 requests), throughput over 32
connections (median of `--rounds` rounds, which take turns between the targets), the
time to open a connection (TCP, and the TLS handshake), and the mTLS/plain ratios; the
goal: mTLS adds <= 15% at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from gateway import body, closed_loop, pct
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port, wait_port

HERE = Path(__file__).resolve().parent
SECRET = "bench-" + "s" * 40
CONNECTIONS = 32
OPENS = 200  # connections opened, for the handshake figure
BLOCK = 20  # requests in a row to one target before the next takes its turn


class Conn:
    """One keep-alive HTTP/1.1 connection, over TLS when given a context."""

    def __init__(self, port: int, context: ssl.SSLContext | None, headers: dict[str, str]
                 ) -> None:
        self.port, self.context, self.headers = port, context, headers

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context,
            server_hostname="127.0.0.1" if self.context else None)
        return self

    async def call(self, method: str, path: str, payload: bytes = b"") -> float:
        head = (f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n")
        started = time.perf_counter()
        self.writer.write(head.encode() + payload)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            # uvicorn closed it, idle 5 s while the other targets took their turns
            await self.open()
            return await self.call(method, path, payload)
        length = next((int(line.partition(b":")[2]) for line in raw.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        answer = await self.reader.readexactly(length)
        status = int(raw.split(b" ", 2)[1])
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {status} {answer[:300]!r}")
        return time.perf_counter() - started

    def close(self) -> None:
        self.writer.close()


class Target:
    """A served endpoint and the request the bench repeats."""

    def __init__(self, port: int, context: ssl.SSLContext | None, headers: dict[str, str],
                 method: str, path: str, payload: bytes = b"") -> None:
        self.port, self.context, self.headers = port, context, headers
        self.method, self.path, self.payload = method, path, payload

    async def connect(self) -> Conn:
        return await Conn(self.port, self.context, self.headers).open()

    async def sequential(self, conn: Conn, n: int) -> list[float]:
        return [await conn.call(self.method, self.path, self.payload) for _ in range(n)]

    async def throughput(self, seconds: float) -> float:
        conns = [await self.connect() for _ in range(CONNECTIONS)]
        return await closed_loop(
            conns, lambda conn: conn.call(self.method, self.path, self.payload), seconds)

    async def opening(self) -> list[float]:
        out = []
        for _ in range(OPENS):
            started = time.perf_counter()
            conn = await self.connect()
            out.append(time.perf_counter() - started)
            conn.close()
        return out


def serve(service: str, port: int, data_dir: Path, env: dict[str, str]
          ) -> subprocess.Popen[bytes]:
    key = {"doc-store": "DOCSTORE", "llm-gateway": "GATEWAY"}[service]
    return subprocess.Popen(
        [sys.executable, "-m", "llmdocs", "serve", service],
        env={**os.environ, **env, "LLMDOCS_DATA_DIR": str(data_dir),
             "LLMDOCS_JWT_SECRET": SECRET, "LLMDOCS_LOG_LEVEL": "WARNING",
             f"LLMDOCS_{key}_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def client_context(certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    context.load_cert_chain(certs / "cli.pem", certs / "cli-key.pem")
    return context


async def stored_document(port: int, context: ssl.SSLContext | None, auth: dict[str, str]
                          ) -> str:
    conn = await Conn(port, context, auth).open()
    payload = json.dumps({"title": "bench", "content": "# bench\n\nA small document.",
                          "format": "markdown"}).encode()
    conn.writer.write(
        (f"POST /documents HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
         f"content-length: {len(payload)}\r\nauthorization: {auth['authorization']}\r\n"
         "connection: close\r\n\r\n").encode() + payload)
    raw = await conn.reader.read()
    conn.close()
    return str(json.loads(raw.partition(b"\r\n\r\n")[2])["document_id"])


@contextmanager
def servers(tmp: Path) -> Iterator[dict[str, int]]:
    """The fake upstream, and each service served plain and with mutual TLS; their ports."""
    subprocess.run([sys.executable, "-m", "llmdocs", "certs", "init", "--dir",
                    str(tmp / "certs")], check=True, stdout=subprocess.DEVNULL)
    upstream = free_port()
    providers = {"LLMDOCS_GATEWAY_PROVIDERS": json.dumps([{
        "name": "upstream", "kind": "openai", "base_url": f"http://127.0.0.1:{upstream}/v1",
        "models": {"bench": "bench"}, "api_key": "sk-x", "trusted": True}]),
        "LLMDOCS_GATEWAY_DEFAULT_MODEL": "bench"}
    ports = {name: free_port() for name in ("docstore", "docstore mtls", "gateway",
                                            "gateway mtls")}
    processes = [subprocess.Popen([sys.executable, str(HERE / "gateway.py"),
                                   "--serve-upstream", str(upstream)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for name, port in ports.items():
        service = "doc-store" if name.startswith("docstore") else "llm-gateway"
        env = {**providers} if service == "llm-gateway" else {}
        env |= {"LLMDOCS_TLS_DIR": str(tmp / "certs")} if name.endswith("mtls") else {}
        processes.append(serve(service, port, tmp / name.replace(" ", "-"), env))
    try:
        for port in (upstream, *ports.values()):
            wait_port(port, 120)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)


async def bench(args: argparse.Namespace, tmp: Path, ports: dict[str, int]) -> None:
    load = os.getloadavg()
    settings = Settings(data_dir=tmp, jwt_secret=SecretStr(SECRET))
    auth = {"authorization": "Bearer " + issue_token(
        settings, "user:bench", ["docs:*", "llm:*"], ttl_seconds=3600)}
    mtls = client_context(tmp / "certs")
    targets: dict[str, Target] = {}
    for name, port in ports.items():
        context = mtls if name.endswith("mtls") else None
        if name.startswith("docstore"):
            doc = await stored_document(port, context, auth)
            targets[name] = Target(port, context, auth, "GET", f"/documents/{doc}")
        else:
            targets[name] = Target(port, context, {**auth, "cache-control": "no-cache"},
                                   "POST", "/v1/chat/completions", body())
    latency: dict[str, list[float]] = {name: [] for name in targets}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    opens: dict[str, list[float]] = {name: [] for name in targets}
    # targets take turns in blocks of BLOCK requests on their own open connection, and
    # rounds take turns: a slow moment of this shared machine hits every target alike
    for _ in range(args.rounds):
        conns = {name: await target.connect() for name, target in targets.items()}
        for name, target in targets.items():
            await target.sequential(conns[name], 20)  # warm up
        for _ in range(max(1, args.sequential // BLOCK)):
            for name, target in targets.items():
                latency[name] += await target.sequential(conns[name], BLOCK)
        for conn in conns.values():
            conn.close()
        for name, target in targets.items():
            rates[name].append(await target.throughput(args.seconds))
            opens[name] += await target.opening()
    report(args, load, latency, rates, opens)


def report(args: argparse.Namespace, load: tuple[float, float, float],
           latency: dict[str, list[float]], rates: dict[str, list[float]],
           opens: dict[str, list[float]]) -> None:
    rate = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nload average at start {load[0]:.2f}, now {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs): this machine is shared, figures are noisy")
    print(f"sequential: {args.rounds} x {args.sequential} requests on one keep-alive "
          f"connection, in turns of {BLOCK}; throughput: {CONNECTIONS} connections, "
          f"median of {args.rounds} x {args.seconds:.0f} s; connect: {args.rounds} x "
          f"{OPENS} new connections")
    print(f"{'':14}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}{'connect p50 ms':>16}")
    for name in latency:
        print(f"{name:14}{pct(latency[name], 0.5):9.3f}{pct(latency[name], 0.95):9.3f}"
              f"{rate[name]:9.0f}{pct(opens[name], 0.5):16.3f}")
    print(f"\n{'mtls / plain':14}{'p50':>9}{'p95':>9}{'req/s':>9}{'connect':>16}  goal: "
          "p50 <= 1.15")
    for service in ("docstore", "gateway"):
        plain, tls = service, f"{service} mtls"
        ratio50 = pct(latency[tls], 0.5) / pct(latency[plain], 0.5)
        print(f"{service:14}{ratio50:9.2f}"
              f"{pct(latency[tls], 0.95) / pct(latency[plain], 0.95):9.2f}"
              f"{rate[tls] / rate[plain]:9.2f}"
              f"{pct(opens[tls], 0.5) / pct(opens[plain], 0.5):16.1f}  "
              f"{'met' if ratio50 <= 1.15 else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default in (("--sequential", 2000), ("--seconds", 5.0), ("--rounds", 3)):
        parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmdocs-bench-tls-"))
    with servers(tmp) as ports:
        asyncio.run(bench(args, tmp, ports))


if __name__ == "__main__":
    main()
