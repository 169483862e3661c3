"""Doc-store ingest and read with encryption at rest on vs off, in the same run.

    .venv/bin/python bench/encryption.py [--docs 20000] [--reads 2000] [--rounds 2]

Each round starts two `llmdocs serve doc-store` subprocesses on SQLite, each in a fresh
data dir, one plain and one with `LLMDOCS_ENCRYPTION_KEYS` (a one-key ring), one after
the other (plain first in odd rounds, encrypted first in even ones, so neither always
gets the warmer machine). Each ingests the same `--docs` synthetic ~400-character
documents (bench/docstore.py's Zipf corpus) through one `POST /documents/bulk` NDJSON
stream and `--docs / 10` more one at a time (`POST /documents`, the single-write path
with its own INSERTs); then `GET /documents/{id}` reads `--reads` random ones, and
`GET /search` runs 200 one-word queries (search must still work: the index keeps terms,
snippets decrypt). The best rate of each mode over the rounds is kept; the ratio is
encrypted / plain (goal: >= 0.80 for ingest and read).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import secrets
import tempfile
import time
from pathlib import Path

import httpx

from docstore import SECRET, corpus, start_service  # bench/docstore.py's
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings

Rates = dict[str, float]  # measure -> operations per second


async def measure(url: str, docs: list[str], words: list[str], reads: int) -> Rates:
    token = issue_token(Settings(jwt_secret=SECRET), "user:bench", ["docs:*"],
                        ttl_seconds=3600)
    rates: Rates = {}
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        bulk, single = docs[: len(docs) * 10 // 11], docs[len(docs) * 10 // 11:]
        body = b"".join(json.dumps({"title": f"doc {i}", "content": doc, "source": "bench"}
                                   ).encode() + b"\n" for i, doc in enumerate(bulk))
        started = time.perf_counter()
        answer = await http.post("/documents/bulk", content=body,
                                 headers={"content-type": "application/x-ndjson"})
        answer.raise_for_status()
        ids = [json.loads(line)["document_id"] for line in answer.text.splitlines()]
        rates["bulk ingest docs/s"] = len(bulk) / (time.perf_counter() - started)
        started = time.perf_counter()
        for i, doc in enumerate(single):
            made = await http.post("/documents", json={"title": f"single {i}",
                                                       "content": doc, "source": "single"})
            made.raise_for_status()
            ids.append(made.json()["document_id"])
        rates["single ingest docs/s"] = len(single) / (time.perf_counter() - started)
        picks = random.Random(3).choices(ids, k=reads)
        started = time.perf_counter()
        for doc_id in picks:
            got = await http.get(f"/documents/{doc_id}")
            got.raise_for_status()
        rates["read docs/s"] = reads / (time.perf_counter() - started)
        queries = random.Random(5).choices(words[:2000], k=200)
        started = time.perf_counter()
        for word in queries:
            (await http.get("/search", params={"q": word, "limit": 20})).raise_for_status()
        rates["search queries/s"] = len(queries) / (time.perf_counter() - started)
    return rates


async def one(docs: list[str], words: list[str], reads: int, keys: str | None) -> Rates:
    with tempfile.TemporaryDirectory(prefix="llmdocs-bench-crypt-") as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/llmdocs.db"
        process, url = start_service(Path(tmp), database, None if keys is None else {
            "LLMDOCS_ENCRYPTION_KEYS": keys})
        try:
            return await measure(url, docs, words, reads)
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    docs, words = corpus(args.docs + args.docs // 10)
    keys = json.dumps({"bench-1": base64.b64encode(secrets.token_bytes(32)).decode()})
    best: dict[str, Rates] = {"plain": {}, "encrypted": {}}
    for round_ in range(args.rounds):
        order = [("plain", None), ("encrypted", keys)]
        for mode, ring in order if round_ % 2 == 0 else order[::-1]:
            rates = asyncio.run(one(docs, words, args.reads, ring))
            print(f"round {round_ + 1} {mode:9}: " + ", ".join(
                f"{name} {rate:,.0f}" for name, rate in rates.items()), flush=True)
            for name, rate in rates.items():
                best[mode][name] = max(best[mode].get(name, 0.0), rate)
    print(f"\n{'measure':24} {'plain':>10} {'encrypted':>10} {'ratio':>7}  goal >= 0.80")
    for name, plain in best["plain"].items():
        encrypted = best["encrypted"][name]
        print(f"{name:24} {plain:10,.0f} {encrypted:10,.0f} {encrypted / plain:7.2f}")


if __name__ == "__main__":
    main()
