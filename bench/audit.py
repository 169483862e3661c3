"""The audit trail's cost per request: a doc-store GET of a document with the audit
trail on and off, in the same run.

    .venv/bin/python bench/audit.py [--runs 500]

Two `llmdocs serve doc-store` subprocesses on temporary SQLite databases, one with
LLMDOCS_AUDIT_ENABLED=true (the default: every such read becomes a record, queued and
published in batches on the bus's audit stream) and one with it false, each holding the
same ~4 KB document. `GET /documents/{id}` (an audited read) is timed on both over HTTP,
the two taking turns request by request so a change in the machine's load falls on both;
p50/p95 of each, and the overhead (on p50 - off p50) / off p50 (goal <= 10%). Afterwards
the records on the audit-on side's bus are counted: one per audited request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from docstore import SECRET, percentiles, start_service
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings

WARMUP = 20


def start(data_dir: Path, audit: bool) -> tuple[subprocess.Popen[bytes], str]:
    """A doc-store subprocess (bench/docstore.py's) with the audit trail on or off."""
    os.environ["LLMDOCS_AUDIT_ENABLED"] = "true" if audit else "false"
    return start_service(data_dir, f"sqlite+aiosqlite:///{data_dir / 'llmdocs.db'}")


async def timed(urls: dict[str, str], runs: int) -> dict[str, list[float]]:
    token = issue_token(Settings(jwt_secret=SECRET), "user:bench", ["docs:*"],
                        ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    content = " ".join(f"word{i % 500}" for i in range(700))  # ~4 KB
    clients = {name: httpx.AsyncClient(base_url=url, headers=headers) for name, url in
               urls.items()}
    try:
        paths = {}
        for name, http in clients.items():
            made = await http.post("/documents", json={"title": "Bench", "content": content})
            made.raise_for_status()
            paths[name] = f"/documents/{made.json()['document_id']}"
        samples: dict[str, list[float]] = {name: [] for name in urls}
        for run in range(WARMUP + runs):
            for name, http in clients.items():
                begun = time.perf_counter()
                (await http.get(paths[name])).raise_for_status()
                if run >= WARMUP:
                    samples[name].append((time.perf_counter() - begun) * 1000)
        return samples
    finally:
        for http in clients.values():
            await http.aclose()


def audited_records(data_dir: Path) -> int:
    """Records on the bus's audit stream of the instance in `data_dir`."""
    conn = sqlite3.connect(data_dir / "llmdocs.db")
    try:
        rows = conn.execute("SELECT envelope FROM eventbus_events WHERE stream = ?",
                            ("llmdocs.events.audit",)).fetchall()
    finally:
        conn.close()
    return sum(len(json.loads(envelope)["data"]["records"]) for envelope, in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    dirs = {name: Path(tempfile.mkdtemp(prefix=f"llmdocs-audit-{name}-"))
            for name in ("audit off", "audit on")}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = {}
        for name, data in dirs.items():
            process, urls[name] = start(data, audit=name == "audit on")
            processes.append(process)
        samples = asyncio.run(timed(urls, args.runs))
        time.sleep(1)  # the last batch leaves within FLUSH_SECONDS
        figures = {name: percentiles(times) for name, times in samples.items()}
        print(f"GET /documents/{{id}}, {args.runs} requests each, taking turns")
        for name, (p50, p95) in figures.items():
            print(f"  {name:10s} p50 {p50:7.3f} ms  p95 {p95:7.3f} ms")
        off, on = figures["audit off"][0], figures["audit on"][0]
        print(f"audit overhead per request: {on - off:+.3f} ms = {(on - off) / off:+.1%} "
              "of the p50 (goal <= 10%)")
        print(f"records on the audit-on bus: {audited_records(dirs['audit on'])} "
              f"(requests audited: {WARMUP + args.runs + 1})")
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        for data in dirs.values():
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
