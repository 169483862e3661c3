"""Time from a spec change to the stale mark, in embedded mode, excluding model time.

The ecosystem runs embedded (gateway, prompt-store, doc-store, orchestrator,
interpreter, analysis in this process, on a temporary SQLite database), every model call
going to the fake instant model of the tests; analysis regenerates nothing
(LLMDOCS_ANALYSIS_REGENERATE=false), so what is timed is the stale mark alone. A spec is
stored and `--docs` API documents are generated from it (before the clock runs). Then,
`--changes` times: a changed version of the spec is stored (in turns, the example with
one operation removed and a summary reworded, and the example again), and the clock runs
until every document shows, at `GET /documents/{id}`, `stale: true` with this change's
finding (polled every millisecond): the doc-store's event, its relay to the bus,
analysis's diff, its look-up of the documents built from the spec, and each mark.

The baseline, measured in the same run, is the store itself: the `PUT` of the spec's new
version, the first part of what the stale time includes. Printed: median and p95 of
each and their ratio. Goal: stale mark ≤ 1 s.

Usage: .venv/bin/python bench/stale.py [--docs 3] [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import uvicorn
import yaml  # type: ignore[import-untyped]

from embedded import embedded
from llmdocs.core.auth import issue_token
from llmdocs.devservers import free_port
from llmdocs.examples import user_service_spec
from llmdocs.runtime import Server, run
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import fake_llm

SERVICES = ("gateway", "promptstore", "docstore", "orchestrator", "interpreter", "analysis")
POLL_SECONDS = 0.001


def versions() -> tuple[str, str]:
    """The example spec, and it with one operation removed and a summary reworded."""
    changed: dict[str, Any] = yaml.safe_load(user_service_spec())
    del changed["paths"]["/sessions/current"]
    changed["paths"]["/users"]["get"]["summary"] = "Every user, a page at a time"
    return user_service_spec(), yaml.safe_dump(changed)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def generate(orchestrator: OrchestratorClient, spec_id: str, count: int) -> list[str]:
    """`count` API documents written from the stored spec by the fake model."""
    made = []
    for i in range(count):
        done = await orchestrator.start_run("document-generation", {
            "query": f"Create API documentation for the user service, copy {i}",
            "spec_document_id": spec_id}, wait=120)
        if done.status != "completed" or not done.result:
            raise SystemExit(f"generation failed: {done.error}")
        made.append(str(done.result["document_id"]))
    return made


async def marked(docs: DocStoreClient, documents: list[str], before: dict[str, str | None]
                 ) -> dict[str, str | None]:
    """Poll until every document is stale with a finding other than the one it had."""
    pending, now = set(documents), dict(before)
    while pending:
        for document_id in list(pending):
            got = await docs.get(document_id)
            if got.stale and got.stale_finding != before[document_id]:
                now[document_id] = got.stale_finding
                pending.discard(document_id)
        if pending:
            await asyncio.sleep(POLL_SECONDS)
    return now


async def measure(docs_count: int, changes: int) -> tuple[list[float], list[float]]:
    fake_port = free_port()
    fake = Server(uvicorn.Config(fake_llm(0), host="127.0.0.1", port=fake_port,
                                 log_level="warning"))
    fake_task = asyncio.create_task(fake.serve())
    os.environ["LLMDOCS_ANALYSIS_REGENERATE"] = "false"
    original, changed = versions()
    stores, stales = [], []
    try:
        async with embedded(SERVICES, f"http://127.0.0.1:{fake_port}") as settings:
            token = issue_token(settings, "user:bench", ["*"])
            async with DocStoreClient.for_service(settings, token=token) as docs, \
                    OrchestratorClient.for_service(settings, token=token) as orchestrator:
                orchestrator.http.timeout = 120
                spec = await docs.put(original, title="User Service OpenAPI", format="yaml",
                                      tags=["openapi"], metadata={"service": "user-service"})
                documents = await generate(orchestrator, spec.document_id, docs_count)
                seen: dict[str, str | None] = dict.fromkeys(documents)
                version = spec.version
                for n in range(changes + 1):  # the first warms caches and connections
                    started = time.perf_counter()
                    stored = await docs.update(spec.document_id,
                                               changed if n % 2 == 0 else original,
                                               if_version=version)
                    stored_at = time.perf_counter()
                    seen = await marked(docs, documents, seen)
                    version = stored.version
                    if n:
                        stores.append(stored_at - started)
                        stales.append(time.perf_counter() - started)
    finally:
        fake.should_exit = True
        await asyncio.gather(fake_task, return_exceptions=True)
    return stores, stales


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=3, help="documents built from the spec")
    parser.add_argument("--changes", type=int, default=20, help="spec versions stored")
    args = parser.parse_args()
    stores, stales = await measure(args.docs, args.changes)
    print(f"{args.docs} documents from one spec; {args.changes} changes, embedded, "
          "regeneration off\n")
    print("| | median ms | p95 ms |")
    print("|---|---|---|")
    for name, times in (("store of the spec version (baseline)", stores),
                        ("spec change to every document stale", stales)):
        print(f"| {name} | {statistics.median(times) * 1000:.1f} | {p95(times) * 1000:.1f} |")
    ratio = statistics.median(stales) / statistics.median(stores)
    print(f"\nstale mark / store, median: {ratio:.1f}x; goal stale mark ≤ 1000 ms: "
          f"{'met' if p95(stales) <= 1.0 else 'not met'} at p95")


if __name__ == "__main__":
    run(main())  # the loop `llmdocs up` runs on
