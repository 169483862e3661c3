"""The web portal's document and search pages against the doc-store's own JSON for the
same data, in the same run, at 16 concurrent clients.

    .venv/bin/python bench/web.py [--seconds 5] [--rounds 3] [--clients 16] [--docs 300]

One `llmdocs up` (embedded, SQLite; the local model not loaded: no page here needs it)
holds a ~10 KB Markdown document (headings, tables, code, as a generated one) and
`--docs` small documents to search. A session of the portal is opened with a link of
`llmdocs web login`. The pairs, each the same data: the portal's `GET /documents/{id}`
(rendered, sanitised, highlighted HTML with its versions) beside the doc-store's
`GET /documents/{id}` (JSON), and the portal's `GET /?q=…` (results with snippets)
beside the doc-store's `GET /search?q=…`. Each target is driven closed-loop by
`--clients` keep-alive connections (lean raw HTTP/1.1, bench/tls.py's) for `--seconds`;
the four targets take turns, `--rounds` times, so a busy moment of this shared machine
hits them alike. Prints p50/p95 and requests per second per target and the portal/JSON
ratios; the goal: portal p50 <= 1.5x the doc-store's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pydantic import SecretStr

from gateway import pct
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from tls import Conn

SECRET = "bench-" + "w" * 40
GOAL = 1.5
QUERY = "lantern"  # in one small document of every ten
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)")
WORDS = ["river", "stone", "copper", "meadow", "signal", "harbor", "window", "ledger",
         "orbit", "cedar", "fabric", "quiet", "rapid", "vessel", "amber", "thread"]


def big_document() -> str:
    """A document shaped like a generated API reference: ~10 KB of Markdown."""
    parts = ["# Orders API\n\nEverything a client of the orders service calls.\n"]
    for n in range(24):
        parts.append(
            f"## Operation {n}: `GET /orders/{{id}}/items/{n}`\n\n"
            f"Returns item {n} of an order, with its price and its state. "
            "A missing order answers 404; a caller without `orders:read` 403.\n\n"
            "| parameter | in | type | required |\n|---|---|---|---|\n"
            "| id | path | string | yes |\n| expand | query | boolean | no |\n\n"
            "```python\nimport httpx\n\n"
            f"answer = httpx.get(f\"{{base}}/orders/{{order_id}}/items/{n}\")\n"
            "answer.raise_for_status()\nprint(answer.json()[\"price\"])\n```\n")
    return "\n".join(parts)


def small_document(n: int) -> str:
    words = [WORDS[(n * 7 + i) % len(WORDS)] for i in range(60)]
    if n % 10 == 0:
        words[30] = QUERY
    return f"# Note {n}\n\n" + " ".join(words) + ".\n"


@contextmanager
def ecosystem(tmp: Path) -> Iterator[dict[str, str]]:
    """`llmdocs up` on free ports; the environment that names it."""
    env = dict(os.environ) | {f"LLMDOCS_{key.upper()}_PORT": str(free_port())
                              for key in SERVICE_NAMES} | {
        "LLMDOCS_DATA_DIR": str(tmp / "data"), "LLMDOCS_JWT_SECRET": SECRET,
        "LLMDOCS_LOG_LEVEL": "WARNING", "LLMDOCS_GATEWAY_WARM_LOCAL": "false",
        "XDG_STATE_HOME": str(tmp / "state")}
    log = tmp / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmdocs", "up"], env=env, cwd=tmp,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not LINK.search(log.read_text(errors="replace")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llmdocs up did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        proc.wait(30)


def url(env: dict[str, str], key: str) -> str:
    return f"http://127.0.0.1:{env[f'LLMDOCS_{key.upper()}_PORT']}"


def seed(env: dict[str, str], docs: int, token: str) -> str:
    """The documents stored; the big one's id."""
    with httpx.Client(base_url=url(env, "docstore"), timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as store:
        for n in range(docs):
            store.post("/documents", json={"content": small_document(n),
                                           "format": "markdown"}).raise_for_status()
        big = store.post("/documents", json={"content": big_document(), "format": "markdown",
                                             "title": "Orders API", "tags": ["openapi"]})
        big.raise_for_status()
        return str(big.json()["document_id"])


def session_cookie(env: dict[str, str]) -> str:
    """The Cookie header of a portal session, signed in with a one-time link."""
    printed = subprocess.run([sys.executable, "-m", "llmdocs", "web", "login"], env=env,
                             capture_output=True, text=True, check=True).stdout
    found = LINK.search(printed)
    if not found:
        raise SystemExit(f"`llmdocs web login` printed no link:\n{printed}")
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        browser.get(found.group(1)).raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


async def drive(port: int, headers: dict[str, str], path: str, clients: int,
                seconds: float) -> tuple[list[float], float]:
    """Latencies of `clients` connections each sending its next request once answered,
    and the requests per second."""
    conns = [await Conn(port, None, headers).open() for _ in range(clients)]
    times: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        while time.perf_counter() < deadline:
            times.append(await conn.call("GET", path))

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return times, len(times) / elapsed


async def bench(args: argparse.Namespace, env: dict[str, str]) -> None:
    load = os.getloadavg()
    token = issue_token(Settings(data_dir=Path(env["LLMDOCS_DATA_DIR"]),
                                 jwt_secret=SecretStr(SECRET)),
                        "user:bench", ["*"], ttl_seconds=3600)
    document = seed(env, args.docs, token)
    web, docstore = (int(env[f"LLMDOCS_{k}_PORT"]) for k in ("WEB", "DOCSTORE"))
    page = {"cookie": session_cookie(env)}
    bearer = {"authorization": f"Bearer {token}"}
    targets = {"document page": (web, page, f"/documents/{document}"),
               "document JSON": (docstore, bearer, f"/documents/{document}"),
               "search page": (web, page, f"/?q={QUERY}"),
               "search JSON": (docstore, bearer, f"/search?q={QUERY}")}
    for port, headers, path in targets.values():  # warm up: caches, compiled templates
        await drive(port, headers, path, args.clients, 1.0)
    latency: dict[str, list[float]] = {name: [] for name in targets}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (port, headers, path) in targets.items():
            times, rate = await drive(port, headers, path, args.clients, args.seconds)
            latency[name] += times
            rates[name].append(rate)
    report(args, load, latency, rates)


def report(args: argparse.Namespace, load: tuple[float, float, float],
           latency: dict[str, list[float]], rates: dict[str, list[float]]) -> None:
    print(f"\nload average at start {load[0]:.2f}, now {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs): this machine is shared, figures are noisy")
    print(f"{args.clients} clients, {args.rounds} rounds x {args.seconds:.0f} s per target")
    print(f"{'':16}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}")
    for name, times in latency.items():
        print(f"{name:16}{pct(times, 0.5):9.2f}{pct(times, 0.95):9.2f}"
              f"{sum(rates[name]) / len(rates[name]):9.0f}")
    print(f"\n{'page / JSON':16}{'p50':>9}{'p95':>9}  goal: p50 <= {GOAL}")
    for what in ("document", "search"):
        page, raw = latency[f"{what} page"], latency[f"{what} JSON"]
        ratio = pct(page, 0.5) / pct(raw, 0.5)
        print(f"{what:16}{ratio:9.2f}{pct(page, 0.95) / pct(raw, 0.95):9.2f}  "
              f"{'met' if ratio <= GOAL else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default in (("--seconds", 5.0), ("--rounds", 3), ("--clients", 16),
                          ("--docs", 300)):
        parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args()
    with ecosystem(Path(tempfile.mkdtemp(prefix="llmdocs-bench-web-"))) as env:
        asyncio.run(bench(args, env))


if __name__ == "__main__":
    main()
