"""Doc-store ingest and search through the service API against a raw SQLite FTS5 table.

    .venv/bin/python bench/docstore.py [--docs 200000] [--queries 50] [--db sqlite postgresql]

The corpus: synthetic documents of ~400 characters whose words follow a Zipf law over a
50,000-word vocabulary. raw: the stdlib sqlite3 driver inserts the corpus into a bare FTS5
table (same tokenizer) in transactions of 500 rows, and answers each query with
`MATCH … ORDER BY bm25 LIMIT 20` plus `snippet()`. API: a `llmdocs serve doc-store`
subprocess ingests the same corpus through `POST /documents/bulk` (NDJSON, 5,000 lines
per request) and answers `GET /search?q=…&limit=20`. Search figures are p50/p95 over
`--queries` runs (after WARMUP unmeasured ones, for raw and API alike) for a rare, a
mid-frequency, a common and a two-term query; `GET /health` is timed the same way as the
HTTP overhead. Ratios are API / raw (for ingest, API rate / raw rate); the search goal
is API p50 - HTTP overhead <= 1.5x raw p50. PostgreSQL runs on a throwaway server; its
baseline is still the raw SQLite table, measured in the same run. A summary table ends
the output.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import PostgresServer, free_port

SECRET = "bench-" + "x" * 40
VOCABULARY = 50_000
BULK_LINES = 5_000
WARMUP = 3
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "par", "qui", "zel"]


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5))))
    return sorted(sorted(words), key=lambda _: rng.random())  # set order varies by process


def corpus(count: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(VOCABULARY)))
    docs = []
    for _ in range(count):
        text: list[str] = []
        while sum(len(w) + 1 for w in text) < 400:
            text += rng.choices(words, cum_weights=weights, k=8)
        docs.append(" ".join(text))
    return docs, words


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def raw_ingest(path: Path, docs: list[str]) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(title, content, "
                 "tokenize='porter unicode61 remove_diacritics 2')")
    started = time.perf_counter()
    for start in range(0, len(docs), 500):
        with conn:
            conn.executemany("INSERT INTO f(title, content) VALUES (?, ?)",
                             [(f"doc {i}", docs[i]) for i in range(start,
                                                                   min(start + 500, len(docs)))])
    elapsed = time.perf_counter() - started
    conn.close()
    return len(docs) / elapsed


def raw_search(path: Path, query: str, runs: int) -> tuple[float, float]:
    conn = sqlite3.connect(path)
    match = " ".join(f'"{w}"' for w in query.split())
    samples = []
    for run in range(WARMUP + runs):
        started = time.perf_counter()
        rows = conn.execute(
            "SELECT rowid, bm25(f, 10.0, 1.0) FROM f WHERE f MATCH ? "
            "ORDER BY bm25(f, 10.0, 1.0) LIMIT 20", (match,)).fetchall()
        ids = [r[0] for r in rows]
        conn.execute(f"SELECT snippet(f, -1, '<mark>', '</mark>', '…', 16) FROM f "
                     f"WHERE f MATCH ? AND rowid IN ({','.join('?' * len(ids))})",
                     (match, *ids)).fetchall()
        if run >= WARMUP:
            samples.append((time.perf_counter() - started) * 1000)
    conn.close()
    return percentiles(samples)


def start_service(data_dir: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LLMDOCS_DATA_DIR": str(data_dir),
           "LLMDOCS_DATABASE_URL": database_url, "LLMDOCS_JWT_SECRET": SECRET,
           "LLMDOCS_LOG_LEVEL": "WARNING", "LLMDOCS_DOCSTORE_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "llmdocs", "serve", "doc-store"],
                               env=env, cwd=data_dir, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the doc-store did not start")


async def api_run(url: str, docs: list[str], queries: dict[str, str],
                  runs: int) -> tuple[float, dict[str, tuple[float, float]]]:
    settings = Settings(jwt_secret=SECRET)
    token = issue_token(settings, "user:bench", ["docs:*"], ttl_seconds=24 * 3600)
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        def lines(start: int) -> Iterator[bytes]:
            for i in range(start, min(start + BULK_LINES, len(docs))):
                yield json.dumps({"title": f"doc {i}", "content": docs[i],
                                  "source": "bench"}).encode() + b"\n"

        started = time.perf_counter()
        for start in range(0, len(docs), BULK_LINES):
            answer = await http.post("/documents/bulk", content=b"".join(lines(start)),
                                     headers={"content-type": "application/x-ndjson"})
            answer.raise_for_status()
            assert answer.text.count('"status":201') == min(BULK_LINES, len(docs) - start)
        rate = len(docs) / (time.perf_counter() - started)
        figures = {}
        for name, query in {**queries, "GET /health": ""}.items():
            samples = []
            for run in range(WARMUP + runs):
                begun = time.perf_counter()
                if query:
                    answer = await http.get("/search", params={"q": query, "limit": 20})
                else:
                    answer = await http.get("/health", params={"deep": "false"})
                answer.raise_for_status()
                if run >= WARMUP:
                    samples.append((time.perf_counter() - begun) * 1000)
            figures[name] = percentiles(samples)
    return rate, figures


def pick_queries(words: list[str]) -> dict[str, str]:
    """Rare, mid-frequency and common words by Zipf rank; the two-term query pairs the
    mid and common words."""
    return {"rare": words[20_000], "mid": words[300], "common": words[1],
            "two-term": f"{words[300]} {words[1]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    docs, words = corpus(args.docs)
    queries = pick_queries(words)
    print(f"{args.docs} documents, mean {statistics.mean(map(len, docs)):.0f} chars; "
          f"queries {queries}")
    results: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="llmdocs-bench-") as tmp:
        raw_path = Path(tmp) / "raw.db"
        raw_rate = raw_ingest(raw_path, docs)
        raw = {name: raw_search(raw_path, q, args.queries) for name, q in queries.items()}
        print(f"\nraw SQLite FTS5: ingest {raw_rate:,.0f} docs/s")
        for name, (p50, p95) in raw.items():
            print(f"  search {name:9s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
        for db in args.db:
            data_dir = Path(tmp) / db
            data_dir.mkdir()
            pg = PostgresServer().start() if db == "postgresql" else None
            try:
                url = (pg.create_database("bench") if pg
                       else f"sqlite+aiosqlite:///{data_dir / 'llmdocs.db'}")
                process, service = start_service(data_dir, url)
                try:
                    rate, figures = asyncio.run(api_run(service, docs, queries, args.queries))
                finally:
                    process.terminate()
                    process.wait(30)
            finally:
                if pg:
                    pg.cleanup()
            results[db] = rate, dict(figures)
            health = figures.pop("GET /health")
            print(f"\nAPI on {db}: ingest {rate:,.0f} docs/s = {rate / raw_rate:.0%} of raw "
                  f"(goal >= 50%)")
            print(f"  HTTP overhead (GET /health): p50 {health[0]:.2f} ms  p95 {health[1]:.2f} ms")
            for name, (p50, p95) in figures.items():
                base = raw[name][0]
                print(f"  search {name:9s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  "
                      f"p50 ratio {p50 / base:5.2f}x raw; minus HTTP overhead "
                      f"{(p50 - health[0]) / base:5.2f}x (goal <= 1.5x)")
    print_summary(args.docs, raw_rate, raw, results)


def print_summary(docs: int, raw_rate: float, raw: dict[str, tuple[float, float]],
                  results: dict[str, tuple[float, dict[str, tuple[float, float]]]]) -> None:
    """One compact table: raw baseline, then per database the API figure and its ratio
    (ingest: share of the raw rate; search: (p50 - HTTP overhead) / raw p50)."""
    dbs = list(results)
    head = f"{'summary, ' + format(docs, ',') + ' docs':28s}{'raw FTS5':>10s}"
    head += "".join(f"{db:>14s}{'ratio':>8s}" for db in dbs)
    print("\n" + head + "\n" + "-" * len(head))
    row = f"{'ingest docs/s (goal >=50%)':28s}{raw_rate:10,.0f}"
    row += "".join(f"{results[db][0]:14,.0f}{results[db][0] / raw_rate:8.0%}" for db in dbs)
    print(row)
    row = f"{'GET /health p50 ms':28s}{'':>10s}"
    row += "".join(f"{results[db][1]['GET /health'][0]:14.2f}{'':>8s}" for db in dbs)
    print(row)
    for name, (base, _) in raw.items():
        row = f"{'search ' + name + ' p50 ms':28s}{base:10.2f}"
        for db in dbs:
            p50 = results[db][1][name][0]
            beyond = p50 - results[db][1]["GET /health"][0]
            row += f"{p50:14.2f}" + (f"{beyond / base:7.1f}x" if beyond > 0 else f"{'<HTTP':>8s}")
        print(row)
    print("(search ratio = (API p50 - GET /health p50) / raw p50, goal <= 1.5x; '<HTTP': the\n"
          " search answered faster than GET /health, whose dependency checks cost more)")


if __name__ == "__main__":
    main()
