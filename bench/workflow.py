"""Document-generation workflow: orchestration overhead and parallel overlap.

The ecosystem runs embedded (gateway, prompt-store, doc-store, orchestrator in this
process, on a temporary SQLite database with the LangGraph checkpointer), and every
model call goes to a fake OpenAI-compatible server with a fixed latency (0 ms, 100 ms).
For each document we take the run's wall time and its critical path of model calls
(per step, the slowest of the calls made concurrently, summed over the steps; the
gateway's own measured latency). A step makes at most `write_concurrency` calls at once
(8): a larger spec's sections are written in waves, and each wave is on the path. The
baseline, measured in the same run, is the same critical path called directly through
the gateway client: the model time alone.

    overhead per document = wall time - critical path       (goal ≤ 20 ms)
    overlap               = wall time / critical path       (goal ≤ 1.2)

The gateway's measured latency of a call includes its HTTP round trip to the provider
and, when calls run concurrently, whatever the event loop did for the other calls
meanwhile. So a stricter figure is printed too: the wall time minus the fake's set
latency times the number of steps that call the model (0 at 0 ms: the whole wall time).
And the idle cost: a doc-store call right after the process slept for the latency, over
the same call back to back (the machine's cost of waking up, paid after every model call);
and the same for the machine alone, with no llmdocs code: one pure-Python pass over 20,000
objects scattered in 5 MB. And the same pass after the process spent the latency busy
instead of asleep ("machine busy"): if that is slow too, the caches were lost to the host
while time passed, not to our process going idle. A host that keeps a core and its caches
to itself shows 1.0x for all three; one that shares them with other guests makes every
step after a model call that much slower, whatever the code.

A second table splits the overhead by where it goes, from the steps the run recorded:
the two steps that call the doc-store (gather_context lists the specs, store stores the
document), the other steps beyond their model calls, the time between steps (LangGraph
and its checkpoint writes) and the time outside the graph (the run's record, the call
to the orchestrator and its answer).

With `--operations N` the spec is a generated one of N operations (ten tags, path and
query parameters, two responses each) in place of the example: how the overhead grows
with the size of the spec.

Usage: .venv/bin/python bench/workflow.py [--docs 10] [--operations 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from embedded import embedded
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.examples import user_service_spec
from llmdocs.runtime import Server, run
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import StepRecord
from llmdocs.services.orchestrator.settings import WorkflowSettings
from services.orchestrator.fakellm import fake_llm

SERVICES = ("gateway", "promptstore", "docstore", "orchestrator")
WRITE_AT_ONCE = WorkflowSettings().write_concurrency  # model calls a step makes at once


def generated_spec(operations: int) -> str:
    """An OpenAPI spec of `operations` operations, as a service of that size has."""
    paths = {f"/things{i}/{{id}}": {"get": {
        "operationId": f"getThing{i}", "tags": [f"group{i % 10}"], "summary": f"Get thing {i}",
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "fields", "in": "query", "schema": {"type": "string", "maxLength": 50}}],
        "responses": {
            "200": {"description": "The thing", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"id": {"type": "string"},
                                                 "size": {"type": "integer"}}}}}},
            "404": {"description": "No such thing"}}}} for i in range(operations)}
    return json.dumps({"openapi": "3.0.3", "info": {"title": "User Service", "version": "1.0"},
                       "paths": paths})


def model_ms(calls: list[dict[str, Any]]) -> dict[str, float]:
    """Per step, the time its model calls take at best: a step makes at most
    WRITE_AT_ONCE calls at once, so its calls go in waves, each as long as its slowest
    (the slowest calls together in the first wave, and so on)."""
    latencies: dict[str, list[float]] = {}
    for call in calls:
        latencies.setdefault(call["step"], []).append(call["latency_ms"])
    return {step: sum(sorted(times, reverse=True)[::WRITE_AT_ONCE])
            for step, times in latencies.items()}


def critical_path_ms(calls: list[dict[str, Any]]) -> float:
    return sum(model_ms(calls).values())


def overhead_split(steps: list[StepRecord], calls: list[dict[str, Any]],
                   wall: float) -> dict[str, float]:
    """Where a document's time beyond its model calls goes (ms)."""
    model = model_ms(calls)
    spans = sorted((s.started_at.timestamp() * 1000, s.duration_ms, s.name) for s in steps)
    split = {"doc-store steps": 0.0, "other steps": 0.0, "between steps": 0.0}
    covered_to = spans[0][0]
    for start, duration, name in spans:
        beyond_model = max(0.0, duration - model.get(name, 0.0))
        key = "doc-store steps" if name in ("gather_context", "store") else "other steps"
        if start >= covered_to:  # a step run beside another (choose_template) counts once
            split[key] += beyond_model
            split["between steps"] += start - covered_to
        covered_to = max(covered_to, start + duration)
    split["outside the graph"] = wall - (covered_to - spans[0][0])
    return split


async def direct_baseline(settings: Settings, token: str, calls: list[dict[str, Any]]
                          ) -> float:
    """The same stages of model calls, straight to the gateway: concurrent within a
    step (as many at once as the workflow makes), steps in sequence."""
    by_step: dict[str, int] = {}
    for call in calls:
        by_step[call["step"]] = by_step.get(call["step"], 0) + 1
    at_once = asyncio.Semaphore(WRITE_AT_ONCE)

    async def query(prompt: str) -> None:
        async with at_once:
            await gateway.query(prompt, max_tokens=16)

    async with GatewayClient.for_service(settings, token=token) as gateway:
        started = time.perf_counter()
        for step, count in by_step.items():
            await asyncio.gather(*(query(f"baseline {step} {i} {time.time_ns()}")
                                   for i in range(count)))
        return (time.perf_counter() - started) * 1000


async def measure(latency: float, docs: int, spec: str) -> dict[str, float]:
    fake_port = free_port()
    fake = Server(uvicorn.Config(fake_llm(latency), host="127.0.0.1",
                                         port=fake_port, log_level="warning"))
    fake_task = asyncio.create_task(fake.serve())
    try:
        async with embedded(SERVICES, f"http://127.0.0.1:{fake_port}") as settings:
            return await documents(settings, latency, docs, spec)
    finally:
        fake.should_exit = True
        await asyncio.gather(fake_task, return_exceptions=True)


async def spin(seconds: float) -> None:
    """Let `seconds` pass without giving up the core."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def idle_cost(work: Callable[[], Awaitable[object]], latency: float, calls: int = 30,
                    pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> float:
    """How much more `work` costs right after `pause(latency)`, as during a model call,
    than back to back: the machine's cost of waking up, which every step after a model
    call pays."""
    async def p50(seconds: float) -> float:
        times = []
        for _ in range(calls):
            await pause(seconds)
            started = time.perf_counter()
            await work()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    await p50(0)  # warm
    return await p50(latency) / await p50(0)


def scattered_walk() -> Callable[[], Awaitable[object]]:
    """One pass over 20,000 int objects spread over about 5 MB of heap."""
    pool = list(range(160_000))
    random.Random(7).shuffle(pool)
    objects = pool[:20_000]

    async def walk() -> int:
        return sum(objects)

    return walk


async def documents(settings: Settings, latency: float, docs: int, spec: str
                    ) -> dict[str, float]:
    """Generate `docs` documents (after one to warm up) and take their medians."""
    token = issue_token(settings, "user:bench", ["*"])
    async with DocStoreClient.for_service(settings, token=token) as store:
        await store.put(spec, title="User Service OpenAPI", format="yaml",
                        tags=["openapi"], metadata={"service": "user-service"})
        idle = await idle_cost(lambda: store.list(tag="openapi", limit=100), latency)
    walk = scattered_walk()
    machine = await idle_cost(walk, latency)
    busy = await idle_cost(walk, latency, pause=spin)
    walls, paths, baselines, strict = [], [], [], []
    splits: list[dict[str, float]] = []
    async with OrchestratorClient.for_service(settings, token=token) as orchestrator:
        orchestrator.http.timeout = 120
        for i in range(docs + 1):  # the first warms caches and connections
            started = time.perf_counter()
            run = await orchestrator.start_run("document-generation", {
                "query": f"Create API documentation for user service, copy {i}",
                "service": "user service"}, wait=120)
            wall = (time.perf_counter() - started) * 1000
            assert run.status == "completed" and run.result, run.error
            calls = run.result["provenance"]["llm_calls"]
            if i:
                walls.append(wall)
                paths.append(critical_path_ms(calls))
                strict.append(wall - latency * 1000 * len({c["step"] for c in calls}))
                splits.append(overhead_split(run.steps, calls, wall))
                baselines.append(await direct_baseline(settings, token, calls))
    wall, path = statistics.median(walls), statistics.median(paths)
    return {"wall": wall, "path": path, "baseline": statistics.median(baselines),
            "overhead": wall - path, "ratio": wall / path if path else float("nan"),
            "strict": statistics.median(strict), "idle": idle, "machine": machine,
            "busy": busy,
            **{k: statistics.median(s[k] for s in splits) for k in splits[0]}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--operations", type=int, help="a generated spec of this size")
    args = parser.parse_args()
    spec = generated_spec(args.operations) if args.operations else user_service_spec()
    print(f"{'latency':>8} {'wall ms':>9} {'crit ms':>9} {'direct ms':>10} "
          f"{'overhead ms':>12} {'wall/crit':>10} {'wall/direct':>12} {'strict ms':>10} "
          f"{'idle cost':>10} {'machine idle':>13} {'machine busy':>13}")
    results = {latency: await measure(latency, args.docs, spec) for latency in (0.0, 0.1)}
    for latency, r in results.items():
        print(f"{latency * 1000:>6.0f}ms {r['wall']:>9.1f} {r['path']:>9.1f} "
              f"{r['baseline']:>10.1f} {r['overhead']:>12.1f} {r['ratio']:>10.2f} "
              f"{r['wall'] / r['baseline']:>12.2f} {r['strict']:>10.1f} "
              f"{r['idle']:>9.2f}x {r['machine']:>12.2f}x {r['busy']:>12.2f}x")
    print("\noverhead by where it goes (median ms per document)")
    keys = ("doc-store steps", "other steps", "between steps", "outside the graph")
    print(f"{'latency':>8} " + " ".join(f"{k:>17}" for k in keys))
    for latency, r in results.items():
        print(f"{latency * 1000:>6.0f}ms " + " ".join(f"{r[k]:>17.1f}" for k in keys))


if __name__ == "__main__":
    run(main())  # the loop `llmdocs up` runs on
