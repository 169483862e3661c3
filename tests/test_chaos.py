"""The chaos test (issue 21): distributed mode on a PostgreSQL and a Redis of the test's
own, every service its own process, two doc-store replicas. While clients generate
documents, a doc-store replica, the orchestrator, Redis and PostgreSQL are killed and
started again in turn. Afterwards every request has its document or a retryable answer,
no 500 was answered at any time, and each Idempotency-Key made exactly one document.
The model is the local instant fake (tests/services/orchestrator/fakellm.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster import Cluster, running_cluster
from ecosystem import NEEDED, store_spec, token
from llmdocs.devservers import PostgresServer, RedisServer
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import FINISHED
from services.interpreter.test_interpreter_input import QUERY
from services.orchestrator.fakellm import fake_llm, provider_env

CLIENTS = 4
AT_LEAST = 3  # requests of each client; more while the outages go on
AT_MOST = 30  # requests of each client: a hang guard
# sends of one request, and long polls of its execution: hang guards, not bounds on an
# outage (a request that gave up while its run went on would count as a duplicate)
ATTEMPTS = 400
FOLLOWS = 60
RETRYABLE = {409, 503, 504}
CONNECTION = 0  # the status recorded for an answer that never came
PAUSE = 0.3  # between retries: sooner than Retry-After's 5 s, to meet more of each outage


@dataclass
class Seen:
    """Every status each request saw, and how each ended (its last execution or answer)."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    chaos_over: asyncio.Event = field(default_factory=asyncio.Event)

    def saw(self, key: str, status: int) -> None:
        self.statuses.setdefault(key, []).append(status)


@pytest.fixture
def own_servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    """A PostgreSQL and a Redis of this test's own, which it crashes and restarts."""
    postgres, redis = PostgresServer().start(), RedisServer().start()
    try:
        yield postgres, redis
    finally:
        redis.cleanup()
        postgres.cleanup()


async def followed(http: httpx.AsyncClient, location: str, key: str, seen: Seen
                   ) -> dict[str, Any] | None:
    """The execution at `location` once finished, or None when it could not be read to
    its end (retrying the request replays its answer)."""
    for _ in range(FOLLOWS):
        try:
            answer = await http.get(location, params={"wait": 5})
        except httpx.TransportError:
            seen.saw(key, CONNECTION)
            await asyncio.sleep(PAUSE)
            continue
        seen.saw(key, answer.status_code)
        if answer.status_code != 200:
            if answer.status_code not in RETRYABLE:
                return None
            await asyncio.sleep(PAUSE)
            continue
        if answer.json()["status"] in FINISHED:
            return dict(answer.json())
    return None


async def one_request(http: httpx.AsyncClient, key: str, seen: Seen) -> None:
    """Send the request until it ends with an execution, a final answer or the guard;
    a retry is the same request with the same key."""
    body = {"query": QUERY, "format": "markdown"}
    for _ in range(ATTEMPTS):
        try:
            answer = await http.post("/execute-query", json=body,
                                     headers={"Idempotency-Key": key})
        except httpx.TransportError:
            seen.saw(key, CONNECTION)
            await asyncio.sleep(PAUSE)
            continue
        seen.saw(key, answer.status_code)
        if answer.status_code == 202:
            execution = await followed(http, answer.headers["location"], key, seen)
            if execution is not None:
                seen.ended[key] = execution
                if execution.get("failure") not in ("unavailable", "timeout"):
                    return
                # its run failed for an outage: the same request again runs afresh
        elif answer.status_code not in RETRYABLE:
            seen.ended[key] = {"answer": answer.status_code, **answer.json()}
            return
        seen.ended[key] = {"answer": answer.status_code}
        await asyncio.sleep(PAUSE)


async def client(interpreter: str, bearer: str, number: int, seen: Seen) -> None:
    """Requests one after another until the chaos is over (at least `AT_LEAST`)."""
    async with httpx.AsyncClient(base_url=interpreter, timeout=60,
                                 headers={"Authorization": f"Bearer {bearer}"}) as http:
        for n in itertools.count():
            if n >= AT_MOST or (n >= AT_LEAST and seen.chaos_over.is_set()):
                return
            await one_request(http, f"chaos-{number}-{n}", seen)


async def chaos(cluster: Cluster, postgres: PostgresServer, redis: RedisServer,
                seen: Seen) -> list[str]:
    """Kill and restart, in turn, each time once a document was generated since the
    last: a doc-store replica, the orchestrator, Redis, PostgreSQL."""
    def done() -> int:
        return sum("document_id" in e and e.get("status") == "completed"
                   for e in seen.ended.values())

    async def progress() -> None:
        before = done()
        for _ in range(1200):  # a hang guard: 120 s
            if done() > before:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"no document generated: {seen.ended}\n{cluster.log()}")

    def crash_and_start(server: PostgresServer | RedisServer) -> None:
        if isinstance(server, PostgresServer):
            server.crash()
        else:
            assert server.process is not None
            server.process.kill()  # SIGKILL: what was not yet written is lost
            server.process.wait(10)
        server.start()

    steps = []
    try:
        for name in ("docstore#1", "orchestrator"):
            await progress()
            await asyncio.to_thread(cluster.restart, name)
            steps.append(name)
        for server in (redis, postgres):
            await progress()
            await asyncio.to_thread(crash_and_start, server)
            steps.append(type(server).__name__)
        await progress()
    finally:
        seen.chaos_over.set()
    return steps


async def test_kills_and_restarts_lose_nothing_duplicate_nothing_and_never_500(
        own_servers: tuple[PostgresServer, RedisServer], serve: Any, tmp_path: Path
        ) -> None:
    postgres, redis = own_servers
    model = await serve(fake_llm(0.0))
    env = {**provider_env(model.url), "LLMDOCS_WORKFLOW_LEASE_SECONDS": "1.5"}
    with running_cluster(tmp_path, postgres.create_database("chaos"), redis.url,
                         services=NEEDED, replicas={"docstore": 2}, env=env) as cluster:
        settings = cluster.settings
        await store_spec(settings)
        seen = Seen()
        clients = [client(settings.url_for("interpreter"), token(settings), n, seen)
                   for n in range(CLIENTS)]
        *_, steps = await asyncio.gather(*clients, chaos(cluster, postgres, redis, seen))
        assert steps == ["docstore#1", "orchestrator", "RedisServer", "PostgresServer"]

        async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
            page = await docs.list(limit=500)
            made = {i.document_id: i.metadata.get("run_id") for i in page.items
                    if "openapi" not in i.tags}
            completed = {key: e for key, e in seen.ended.items()
                         if e.get("status") == "completed"}
            documents = sorted(e["document_id"] for e in completed.values())
            readable = sorted([(await docs.get(d)).document_id for d in documents])
        async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
            runs = (await orch.runs(limit=500)).items
        log = cluster.log()

    every = Counter(s for statuses in seen.statuses.values() for s in statuses)
    assert 500 not in every, (every, log)
    assert set(every) <= {200, 202, CONNECTION} | RETRYABLE, (every, log)
    unfinished = {key: e for key, e in seen.ended.items() if key not in completed}
    # every request ended with its document, or with an answer that says retry
    assert all(e.get("answer") in RETRYABLE for e in unfinished.values()), unfinished
    assert len(seen.ended) >= CLIENTS * AT_LEAST and len(completed) >= CLIENTS * AT_LEAST, (
        every, unfinished)
    assert readable == documents
    # once and only once: each key one run and one document, and no other was stored
    assert len({e["run_id"] for e in completed.values()}) == len(set(documents)) == len(
        completed)
    extra = {d: r for d, r in made.items() if d not in documents}
    assert sorted(made) == documents, (len(made), len(documents), extra,
                                       [r for r in runs if r.id in extra.values()], log)
    assert sorted(r.result["document_id"] for r in runs
                  if r.status == "completed" and r.result) == documents
