"""Doc-store ingest and read with encryption at rest on vs off, in the same run.

    .venv/bin/python bench/encryption.py [--docs 20000] [--reads 2000] [--rounds 2]
                                         [--postgres]

Each round starts two `llmdocs serve doc-store` subprocesses on SQLite (with
`--postgres`: on a private PostgreSQL server, a fresh database each), each in a fresh
data dir, one plain and one with `LLMDOCS_ENCRYPTION_KEYS` (a one-key ring), side by
side, and gives them the same work in turns, so a change in the machine's load falls on
both (on a shared machine, running one after the other measured the load, not the
encryption). Each ingests the same `--docs` synthetic ~400-character documents
(bench/docstore.py's Zipf corpus) through `POST /documents/bulk` NDJSON streams of
`BATCH` lines, and `--docs / 10` more one at a time (`POST /documents`, the single-write
path with its own INSERTs); then `GET /documents/{id}` reads `--reads` random ones, and
`GET /search` runs 200 one-word queries (search must still work: the index keeps terms,
snippets decrypt). Each step alternates between the two, the first of each pair taking
turns. The best rate of each mode over the rounds is kept; the ratio is encrypted /
plain (goal: >= 0.80 for ingest and read).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from docstore import SECRET, corpus, start_service  # bench/docstore.py's
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import PostgresServer

Rates = dict[str, float]  # measure -> operations per second
T = TypeVar("T")
MODES = ("plain", "encrypted")
BATCH = 1000  # NDJSON lines per bulk request
DATABASES = itertools.count()  # on --postgres: a fresh database per doc-store


async def in_turns(clients: dict[str, httpx.AsyncClient], items: Sequence[T],
                   call: Callable[[str, httpx.AsyncClient, T], Awaitable[None]]
                   ) -> dict[str, float]:
    """Seconds each mode spent on `call` over `items`, the two taking turns per item."""
    spent = dict.fromkeys(MODES, 0.0)
    for i, item in enumerate(items):
        for mode in MODES if i % 2 == 0 else MODES[::-1]:
            started = time.perf_counter()
            await call(mode, clients[mode], item)
            spent[mode] += time.perf_counter() - started
    return spent


async def measure(urls: dict[str, str], docs: list[str], words: list[str],
                  reads: int) -> dict[str, Rates]:
    token = issue_token(Settings(jwt_secret=SECRET), "user:bench", ["docs:*"],
                        ttl_seconds=3600)
    rates: dict[str, Rates] = {mode: {} for mode in MODES}
    ids: dict[str, list[str]] = {mode: [] for mode in MODES}
    clients = {mode: httpx.AsyncClient(base_url=url, timeout=600,
                                       headers={"Authorization": f"Bearer {token}"})
               for mode, url in urls.items()}

    def record(name: str, count: int, spent: dict[str, float]) -> None:
        for mode in MODES:
            rates[mode][name] = count / spent[mode]

    try:
        bulk, single = docs[: len(docs) * 10 // 11], docs[len(docs) * 10 // 11:]
        lines = [json.dumps({"title": f"doc {i}", "content": doc, "source": "bench"}
                            ).encode() + b"\n" for i, doc in enumerate(bulk)]
        batches = [b"".join(lines[i:i + BATCH]) for i in range(0, len(lines), BATCH)]

        async def ingest(mode: str, http: httpx.AsyncClient, body: bytes) -> None:
            answer = await http.post("/documents/bulk", content=body,
                                     headers={"content-type": "application/x-ndjson"})
            answer.raise_for_status()
            ids[mode] += [json.loads(line)["document_id"] for line in answer.text.splitlines()]

        record("bulk ingest docs/s", len(bulk), await in_turns(clients, batches, ingest))

        async def put(mode: str, http: httpx.AsyncClient, item: tuple[int, str]) -> None:
            i, doc = item
            made = await http.post("/documents", json={"title": f"single {i}",
                                                       "content": doc, "source": "single"})
            made.raise_for_status()
            ids[mode].append(made.json()["document_id"])

        record("single ingest docs/s", len(single),
               await in_turns(clients, list(enumerate(single)), put))
        picks = random.Random(3).choices(range(len(docs)), k=reads)

        async def read(mode: str, http: httpx.AsyncClient, pick: int) -> None:
            (await http.get(f"/documents/{ids[mode][pick]}")).raise_for_status()

        record("read docs/s", reads, await in_turns(clients, picks, read))
        queries = random.Random(5).choices(words[:2000], k=200)

        async def search(mode: str, http: httpx.AsyncClient, word: str) -> None:
            (await http.get("/search", params={"q": word, "limit": 20})).raise_for_status()

        record("search queries/s", len(queries), await in_turns(clients, queries, search))
    finally:
        for client in clients.values():
            await client.aclose()
    return rates


async def one(docs: list[str], words: list[str], reads: int, keys: str,
              postgres: PostgresServer | None) -> dict[str, Rates]:
    with tempfile.TemporaryDirectory(prefix="llmdocs-bench-crypt-") as tmp:
        processes, urls = [], {}
        try:
            for mode in MODES:
                data = Path(tmp) / mode
                data.mkdir()
                database = (f"sqlite+aiosqlite:///{data}/llmdocs.db" if postgres is None
                            else postgres.create_database(f"crypt{next(DATABASES)}"))
                process, urls[mode] = start_service(data, database, {
                    "LLMDOCS_ENCRYPTION_KEYS": keys} if mode == "encrypted" else None)
                processes.append(process)
            return await measure(urls, docs, words, reads)
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    postgres = PostgresServer().start() if args.postgres else None
    docs, words = corpus(args.docs + args.docs // 10)
    keys = json.dumps({"bench-1": base64.b64encode(secrets.token_bytes(32)).decode()})
    best: dict[str, Rates] = {mode: {} for mode in MODES}
    try:
        for round_ in range(args.rounds):
            rates = asyncio.run(one(docs, words, args.reads, keys, postgres))
            for mode in MODES:
                print(f"round {round_ + 1} {mode:9}: " + ", ".join(
                    f"{name} {rate:,.0f}" for name, rate in rates[mode].items()), flush=True)
                for name, rate in rates[mode].items():
                    best[mode][name] = max(best[mode].get(name, 0.0), rate)
    finally:
        if postgres is not None:
            postgres.cleanup()
    print(f"\n{'measure':24} {'plain':>10} {'encrypted':>10} {'ratio':>7}  goal >= 0.80")
    for name, plain in best["plain"].items():
        encrypted = best["encrypted"][name]
        print(f"{name:24} {plain:10,.0f} {encrypted:10,.0f} {encrypted / plain:7.2f}")


if __name__ == "__main__":
    main()
