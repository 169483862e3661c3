"""Doc-store ingest and search through the service API against raw baselines.

    .venv/bin/python bench/docstore.py [--docs 200000] [--queries 50] [--db sqlite postgresql]
    .venv/bin/python bench/docstore.py --single 200

`--single N` times instead the two calls a generated document makes, each N times
through the in-process client of an embedded doc-store (SQLite), as the orchestrator
makes them: `GET /documents?tag=openapi&limit=100` (one match) and a keyed
`POST /documents?dedupe=false` of a ~20 KB Markdown document with provenance, tags,
metadata and a derived_from relation; `GET /info` (authenticated, touches nothing) is
timed in the same rounds as the baseline, and each call's time beyond it is reported.

The corpus: synthetic documents of ~400 characters whose words follow a Zipf law over a
50,000-word vocabulary. Baselines, measured in the same run:
- raw SQLite FTS5: the stdlib sqlite3 driver inserts the corpus into a bare FTS5 table
  (same tokenizer) in transactions of 500 rows, and answers each query with
  `MATCH … ORDER BY bm25 LIMIT 20` plus `snippet()`. The issue's baseline for both.
- raw PostgreSQL (on the same throwaway server the API then uses): asyncpg inserts the
  corpus in transactions of 500 rows into a table with the doc-store's weighted
  generated tsvector and a GIN index, and answers `@@ … ORDER BY ts_rank_cd LIMIT 20`
  plus `ts_headline()`. The fair baseline for the API on PostgreSQL: the same engine,
  index and on-disk work, without the service.
- ingest ceiling, both databases: the doc-store's own bulk INSERTs (documents, then
  versions, which fill the search index: FTS5 trigger, tsvector, GIN, term statistics)
  through its database layer, one transaction per bulk batch: what storing the
  documents costs the database alone, with no HTTP, parsing, duplicate lookup or events.
API: a `llmdocs serve doc-store` subprocess ingests the corpus through one
`POST /documents/bulk` request streaming it as NDJSON, as an import of one file would,
and answers
`GET /search?q=…&limit=20`. Search figures are p50/p95 over `--queries` rounds (after
WARMUP unmeasured ones; raw and API alike, the queries take turns in each round) for a
rare, a mid-frequency, a common and a two-term query; `GET /health` is timed in the
same rounds as the HTTP overhead, and so is
`GET /info` (authenticated, no dependency checks: the stricter overhead). Ratios are
API / raw (for ingest, API rate / raw rate); the search goal is API p50 - HTTP overhead
<= 1.5x raw p50. A summary table ends the output.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, insert_json_rows
from llmdocs.core.ids import new_id
from llmdocs.devservers import PostgresServer, free_port
from llmdocs.migrations import upgrade
from llmdocs.services.docstore.bulk import BULK_BATCH, BULK_DOCUMENT, BULK_VERSION
from llmdocs.services.docstore.models import DOCUMENTS, VERSIONS

SECRET = "bench-" + "x" * 40
VOCABULARY = 50_000
WARMUP = 3
# HTTP overhead: the issue's GET /health (which also pings the database, event bus and
# blob store), and GET /info, authenticated like a search but touching nothing
Request = tuple[str, dict[str, str | int]]  # path, query parameters
OVERHEAD: dict[str, Request] = {"GET /health": ("/health", {"deep": "false"}),
                                "GET /info": ("/info", {})}
Figures = dict[str, tuple[float, float]]  # name -> (p50, p95) ms
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


async def timed_rounds(names: Iterable[str], runs: int,
                       call: Callable[[str], Awaitable[object]]) -> Figures:
    """p50/p95 of each named request over `runs` rounds (after WARMUP), the requests
    taking turns round after round: a change in the shared machine's load falls on every
    figure alike, and each request runs after the others as it would in use (a common
    word's search pushes the others' pages out of the caches). Raw baselines and the API
    are timed the same way."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    for run in range(WARMUP + runs):
        for name, times in samples.items():
            begun = time.perf_counter()
            await call(name)
            if run >= WARMUP:
                times.append((time.perf_counter() - begun) * 1000)
    return {name: percentiles(times) for name, times in samples.items()}


def raw_search(path: Path, queries: dict[str, str], runs: int) -> Figures:
    conn = sqlite3.connect(path)

    async def search(name: str) -> None:
        match = " ".join(f'"{w}"' for w in queries[name].split())
        rows = conn.execute(
            "SELECT rowid, bm25(f, 10.0, 1.0) FROM f WHERE f MATCH ? "
            "ORDER BY bm25(f, 10.0, 1.0) LIMIT 20", (match,)).fetchall()
        ids = [r[0] for r in rows]
        conn.execute(f"SELECT snippet(f, -1, '<mark>', '</mark>', '…', 16) FROM f "
                     f"WHERE f MATCH ? AND rowid IN ({','.join('?' * len(ids))})",
                     (match, *ids)).fetchall()

    try:
        return asyncio.run(timed_rounds(queries, runs, search))
    finally:
        conn.close()


async def ceiling_ingest(url: str, docs: list[str]) -> float:
    """The ingest ceiling: the doc-store's own bulk INSERTs (documents, then versions,
    which fill the search index) through its database layer, one transaction per bulk
    batch, into a database of their own: what storing the documents costs the database,
    with no HTTP, parsing, duplicate lookup or events."""
    database = Database(url)
    await database.migrate(upgrade)
    statements = [insert_json_rows(database.dialect, table, fields)
                  for table, fields in ((DOCUMENTS, BULK_DOCUMENT), (VERSIONS, BULK_VERSION))]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, len(docs), BULK_BATCH):
        rows = json.dumps([
            {"id": new_id(), "title": f"doc {i}", "format": "markdown", "source": "bench",
             "author": "user:bench", "metadata": {}, "content": docs[i],
             "media_type": "text/markdown; charset=utf-8", "size": len(docs[i]),
             "content_hash": hashlib.sha256(docs[i].encode()).hexdigest(),
             "provenance": None, "message": None}
            for i in range(start, min(start + BULK_BATCH, len(docs)))])
        async with database.transaction() as session:
            for statement in statements:
                await session.execute(statement, {"rows": rows, "now": now})
    elapsed = time.perf_counter() - started
    await database.dispose()
    return len(docs) / elapsed


PG_TABLE = """CREATE TABLE f (id bigserial PRIMARY KEY, title text, content text,
    v tsvector GENERATED ALWAYS AS (setweight(to_tsvector('english', title), 'A') ||
                                    setweight(to_tsvector('english', content), 'B')) STORED)"""
PG_SEARCH = """SELECT id, ts_rank_cd(v, q, 1) AS rank FROM f, plainto_tsquery('english', $1) q
    WHERE v @@ q ORDER BY rank DESC LIMIT 20"""
PG_SNIPPETS = """SELECT ts_headline('english', content, plainto_tsquery('english', $1),
    'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=2')
    FROM f WHERE id = ANY($2)"""


async def raw_postgres(url: str, docs: list[str], queries: dict[str, str],
                       runs: int) -> tuple[float, Figures]:
    """Ingest into a bare tsvector + GIN table, then time each query (baseline)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(PG_TABLE)
        await conn.execute("CREATE INDEX f_v ON f USING gin (v)")
        started = time.perf_counter()
        for start in range(0, len(docs), 500):
            async with conn.transaction():
                await conn.executemany("INSERT INTO f (title, content) VALUES ($1, $2)",
                                       [(f"doc {i}", docs[i]) for i in
                                        range(start, min(start + 500, len(docs)))])
        rate = len(docs) / (time.perf_counter() - started)
        await conn.execute("ANALYZE f")

        async def search(name: str) -> None:
            ids = [row["id"] for row in await conn.fetch(PG_SEARCH, queries[name])]
            await conn.fetch(PG_SNIPPETS, queries[name], ids)

        figures = await timed_rounds(queries, runs, search)
        await conn.execute("DROP TABLE f")
    finally:
        await conn.close()
    return rate, figures


def start_service(data_dir: Path, database_url: str, extra: dict[str, str] | None = None
                  ) -> tuple[subprocess.Popen[bytes], str]:
    """`extra`: more settings (bench/encryption.py's key ring)."""
    port = free_port()
    env = {**os.environ, "LLMDOCS_DATA_DIR": str(data_dir),
           "LLMDOCS_DATABASE_URL": database_url, "LLMDOCS_JWT_SECRET": SECRET,
           "LLMDOCS_LOG_LEVEL": "WARNING", "LLMDOCS_DOCSTORE_PORT": str(port), **(extra or {})}
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
                  runs: int) -> tuple[float, Figures]:
    settings = Settings(jwt_secret=SECRET)
    token = issue_token(settings, "user:bench", ["docs:*"], ttl_seconds=24 * 3600)
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        # encoded before the clock starts, as the raw baselines get their rows ready
        lines = [json.dumps({"title": f"doc {i}", "content": doc, "source": "bench"}
                            ).encode() + b"\n" for i, doc in enumerate(docs)]

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(lines), 1000):
                yield b"".join(lines[start:start + 1000])

        started = time.perf_counter()
        answer = await http.post("/documents/bulk", content=stream(),
                                 headers={"content-type": "application/x-ndjson"})
        answer.raise_for_status()
        assert answer.text.count('"status":201') == len(docs)
        rate = len(docs) / (time.perf_counter() - started)
        paths: dict[str, Request] = {
            **{name: ("/search", {"q": q, "limit": 20}) for name, q in queries.items()},
            **OVERHEAD}

        async def get(name: str) -> None:
            path, params = paths[name]
            (await http.get(path, params=params)).raise_for_status()

        figures = await timed_rounds(paths, runs, get)
    return rate, figures


def pick_queries(words: list[str]) -> dict[str, str]:
    """Rare, mid-frequency and common words by Zipf rank; the two-term query pairs the
    mid and common words."""
    return {"rare": words[20_000], "mid": words[300], "common": words[1],
            "two-term": f"{words[300]} {words[1]}"}



def ratio(beyond: float, base: float) -> str:
    """A search's time beyond the HTTP overhead over its baseline's time."""
    return f"{beyond / base:.2f}x" if beyond > 0 else "<HTTP"


def report(title: str, rate: float, figures: Figures,
           baselines: list[tuple[str, float, Figures]]) -> None:
    """One run's figures with its ratio to each baseline (ingest: share of the raw rate;
    search: (p50 - HTTP overhead) / raw p50, by GET /health as the issue sets it, and by
    the check-free GET /info against the first baseline)."""
    health = figures.get("GET /health", (0.0, 0.0))[0]
    print(f"\n{title}: ingest {rate:,.0f} docs/s  "
          + "  ".join(f"= {rate / base:.0%} of {name}" for name, base, _ in baselines))
    for name in OVERHEAD:
        if name in figures:
            print(f"  HTTP overhead ({name}): p50 {figures[name][0]:.2f} ms  "
                  f"p95 {figures[name][1]:.2f} ms")
    for name, (p50, p95) in figures.items():
        if name in OVERHEAD:
            continue
        ratios = "  ".join(f"{ratio(p50 - health, raw[name][0])} {base_name}"
                           for base_name, _, raw in baselines)
        if "GET /info" in figures:
            ratios += (f"  (beyond GET /info: {p50 - figures['GET /info'][0]:.2f} ms = "
                       f"{ratio(p50 - figures['GET /info'][0], baselines[0][2][name][0])} "
                       f"{baselines[0][0]})")
        print(f"  search {name:9s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  {ratios}")


async def single_calls(runs: int) -> Figures:
    """p50/p95 of GET /info, the orchestrator's list and its keyed create (see the
    module docstring), in an embedded doc-store on a temporary SQLite database."""
    from embedded import embedded
    from llmdocs.services.docstore.client import DocStoreClient

    async with embedded(["docstore"]) as settings:
        token = issue_token(settings, "user:bench", ["docs:*"])
        rng = random.Random(3)
        words = vocabulary(rng)[:2000]
        body = "\n\n".join(f"## Section {i}\n\n" + " ".join(rng.choices(words, k=300))
                            for i in range(10))  # ~20 KB, as a generated document
        async with DocStoreClient.for_service(settings, token=token) as store:
            spec = await store.put("openapi: 3.1.0\n", title="User Service OpenAPI",
                                   format="yaml", tags=["openapi"],
                                   metadata={"service": "user-service"})
            provenance = {"workflow_execution": {"id": "x", "steps": [
                {"name": f"step{i}", "duration_ms": 12.5} for i in range(9)]},
                "data_lineage": {"sources": [{"document_id": spec.document_id}]},
                "llm_calls": [{"provider": "local", "model": "m", "tokens": 100 + i}
                              for i in range(12)]}
            made = itertools.count()

            async def call(name: str) -> None:
                if name == "GET /info":
                    await store.info()
                elif name == "list tag=openapi":
                    assert len((await store.list(tag="openapi", limit=100)).items) == 1
                else:
                    run = f"run-{next(made)}"
                    await store.put(
                        f"# Document {run}\n\n{body}", dedupe=False,
                        idempotency_key=f"run:{run}", title=f"API docs {run}",
                        format="markdown", provenance=provenance,
                        source="orchestrator:document-generation", author="u1",
                        metadata={"run_id": run, "workflow": "document-generation"},
                        tags=["generated", "api"],
                        relations=[{"type": "derived_from",
                                    "target_id": spec.document_id}])

            return await timed_rounds(["GET /info", "list tag=openapi", "keyed create"],
                                      runs, call)


def report_single(figures: Figures) -> None:
    """Each call's p50/p95, its time beyond GET /info and its ratio to it."""
    info = figures["GET /info"][0]
    print(f"{'call':20s} {'p50 ms':>8s} {'p95 ms':>8s} {'beyond /info':>13s} {'/ /info':>8s}")
    for name, (p50, p95) in figures.items():
        print(f"{name:20s} {p50:8.2f} {p95:8.2f} {p50 - info:13.2f} {p50 / info:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--single", type=int, metavar="N",
                        help="time the orchestrator's single create and list N times")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.single:
        report_single(asyncio.run(single_calls(args.single)))
        return
    docs, words = corpus(args.docs)
    queries = pick_queries(words)
    print(f"{args.docs} documents, mean {statistics.mean(map(len, docs)):.0f} chars; "
          f"queries {queries}")
    columns: list[tuple[str, float, Figures, list[tuple[str, float, Figures]]]] = []
    ceilings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmdocs-bench-") as tmp:
        raw_path = Path(tmp) / "raw.db"
        fts5 = ("raw FTS5", raw_ingest(raw_path, docs),
                raw_search(raw_path, queries, args.queries))
        report("raw SQLite FTS5", fts5[1], fts5[2], [])
        columns.append((*fts5, []))
        for db in args.db:
            data_dir = Path(tmp) / db
            data_dir.mkdir()
            pg = PostgresServer().start() if db == "postgresql" else None
            try:
                url = (pg.create_database("bench") if pg
                       else f"sqlite+aiosqlite:///{data_dir / 'llmdocs.db'}")
                baselines = [fts5]
                ceiling = asyncio.run(ceiling_ingest(
                    pg.create_database("ceiling") if pg
                    else f"sqlite+aiosqlite:///{Path(tmp) / 'ceiling.db'}", docs))
                if pg:
                    rate, figures = asyncio.run(raw_postgres(url, docs, queries, args.queries))
                    raw_pg = ("raw PG", rate, figures)
                    report("raw PostgreSQL tsvector/GIN", rate, figures, [fts5])
                    columns.append((*raw_pg, [fts5]))
                    baselines = [raw_pg, fts5]
                print(f"\ningest ceiling on {db}: the doc-store's own INSERTs "
                      f"{ceiling:,.0f} docs/s = {ceiling / baselines[0][1]:.0%} of "
                      f"{baselines[0][0]}")
                process, service = start_service(data_dir, url)
                try:
                    rate, figures = asyncio.run(api_run(service, docs, queries, args.queries))
                finally:
                    process.terminate()
                    process.wait(30)
            finally:
                if pg:
                    pg.cleanup()
            report(f"API on {db}", rate, figures, baselines)
            columns.append((f"API {db}", rate, figures, baselines))
            ceilings.append(f"API {db}: {rate:,.0f} docs/s = {rate / ceiling:.0%} of its "
                            f"ceiling, {ceiling:,.0f} docs/s "
                            f"({ceiling / baselines[0][1]:.0%} of {baselines[0][0]})")
    print_summary(args.docs, columns)
    print("\n".join(["ingest against the database's own cost of the doc-store's rows:",
                     *ceilings]))


def print_summary(docs: int,
                  columns: list[tuple[str, float, Figures, list[tuple[str, float, Figures]]]]
                  ) -> None:
    """One compact table: each baseline and API run, an API run followed by its ratio to
    each of its baselines (ingest: share of the raw rate, goal >= 50%; search:
    (p50 - GET /health p50) / raw p50, goal <= 1.5x)."""
    head = f"{'summary, ' + format(docs, ',') + ' docs':26s}"
    for name, _, _, baselines in columns:
        head += f"{name:>16s}" + "".join(f"{'/' + b[0]:>12s}" for b in baselines)
    print("\n" + head + "\n" + "-" * len(head))
    row = f"{'ingest docs/s':26s}"
    for _, rate, _, baselines in columns:
        row += f"{rate:16,.0f}" + "".join(f"{rate / b[1]:12.0%}" for b in baselines)
    print(row)
    for overhead in OVERHEAD:
        row = f"{overhead + ' p50 ms':26s}"
        for _, _, figures, baselines in columns:
            took = figures.get(overhead)
            row += (f"{took[0]:16.2f}" if took else f"{'':16s}") + " " * 12 * len(baselines)
        print(row)
    for query in columns[0][2]:
        row = f"{'search ' + query + ' p50 ms':26s}"
        for _, _, figures, baselines in columns:
            p50 = figures[query][0]
            beyond = p50 - figures.get("GET /health", (0.0, 0.0))[0]
            row += f"{p50:16.2f}" + "".join(f"{ratio(beyond, b[2][query][0]):>12s}"
                                            for b in baselines)
        print(row)
    print("(ratios: ingest = API rate / baseline rate, goal >= 50%; search = (API p50 -\n"
          " GET /health p50) / baseline p50, goal <= 1.5x; '<HTTP': faster than GET /health)")


if __name__ == "__main__":
    main()
