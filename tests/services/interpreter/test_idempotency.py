"""Once and only once: POST /execute-query with an Idempotency-Key runs once. The same
key and body again get the first answer (status and body); another body is a 422;
while the first is still running, a 409; a synchronous call that cannot wait any
longer is a 202 with the execution's Location, replayed as such. On SQLite and
PostgreSQL, real services over HTTP, the model the local fake."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecosystem import start_services, store_spec, token
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from services.interpreter.test_interpreter_input import QUERY, as_user, run_ids
from services.orchestrator.fakellm import fake_llm, provider_env
from tables import rows, table_gone


async def keyed_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                    database_url: str, latency: float = 0.0) -> Settings:
    fake = await serve(fake_llm(latency))
    for key, value in provider_env(fake.url).items():
        monkeypatch.setenv(key, value)
    settings.database_url = database_url
    eco = await start_services(settings, serve)
    await store_spec(eco)
    return eco


async def generated(settings: Settings) -> list[str]:
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        page = await docs.list(limit=100)
    return [item.document_id for item in page.items if "openapi" not in item.tags]


async def test_a_retried_request_runs_once_and_gets_the_first_answer(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    eco = await keyed_eco(settings, serve, monkeypatch, database_url)
    async with as_user(eco, "user:alice") as alice, as_user(eco, "user:bob") as bob:
        keyed = {"Idempotency-Key": "order-1"}
        first = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert first.status_code == 200, first.text
        again = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert again.status_code == 200 and again.json() == first.json()
        assert await run_ids(eco) == {first.json()["run_id"]}
        assert await generated(eco) == [first.json()["document_id"]]

        other = await alice.post("/execute-query", headers=keyed,
                                 json={"query": QUERY + " as HTML"})
        assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
        # a key is its caller's own: another's same key is another request
        bobs = await bob.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert bobs.status_code == 200
        assert bobs.json()["execution_id"] != first.json()["execution_id"]
        # a refused request starts nothing and keeps no key: the fixed request may use it
        refused = await alice.post("/execute-query", headers={"Idempotency-Key": "k2"},
                                   json={"query": "Create API documentation"})
        assert refused.status_code == 422 and "which API" in refused.json()["detail"]
        assert len(await run_ids(eco)) == 2
        fixed = await alice.post("/execute-query", headers={"Idempotency-Key": "k2"},
                                 json={"query": QUERY + " in HTML"})
        assert fixed.status_code == 200, fixed.text
        assert len(await run_ids(eco)) == 3


async def test_a_retry_while_running_is_409_and_a_cut_wait_is_202(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    monkeypatch.setenv("LLMDOCS_INTERPRETER_SYNC_TIMEOUT_SECONDS", "2")
    eco = await keyed_eco(settings, serve, monkeypatch, database_url, latency=2.0)
    keyed = {"Idempotency-Key": "slow-1"}
    async with as_user(eco, "user:alice") as alice:
        first = asyncio.create_task(alice.post("/execute-query", json={"query": QUERY},
                                               headers=keyed))
        while not await run_ids(eco):  # the first request's run has started
            await asyncio.sleep(0.05)
        running = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert running.status_code == 409, running.text
        assert "still being carried out" in running.json()["detail"]

        cut = await first  # its run outlasts the synchronous wait
        assert cut.status_code == 202, cut.text
        assert cut.headers["location"] == f"/executions/{cut.json()['execution_id']}"
        replayed = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert replayed.status_code == 202 and replayed.json() == cut.json()
        assert replayed.headers["location"] == cut.headers["location"]

        done = (await alice.get(cut.headers["location"], params={"wait": 60})).json()
        while done["status"] not in ("completed", "failed", "cancelled"):
            done = (await alice.get(cut.headers["location"], params={"wait": 60})).json()
        assert done["status"] == "completed", done["error"]
        assert await run_ids(eco) == {cut.json()["run_id"]}
        assert await generated(eco) == [done["document_id"]]


async def test_a_keyed_request_runs_once_whatever_fails_after_its_run_started(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    """Our record cannot be read when the run ends: a 202 with the execution, replayed.
    Our record cannot be written: the retry (the key given back with the 5xx) starts
    no second run, the orchestrator's key being derived from ours."""
    eco = await keyed_eco(settings, serve, monkeypatch, database_url, latency=0.5)
    async with as_user(eco, "user:alice") as alice:
        keyed = {"Idempotency-Key": "follow-fails"}
        first = asyncio.create_task(alice.post("/execute-query", json={"query": QUERY},
                                               headers=keyed))
        while not await rows(database_url, "interpreter_executions"):
            await asyncio.sleep(0.05)
        async with table_gone(database_url, "interpreter_executions"):
            cut = await first
        assert cut.status_code == 202, cut.text
        assert cut.headers["location"] == f"/executions/{cut.json()['execution_id']}"
        again = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert again.status_code == 202 and again.json() == cut.json()
        assert await run_ids(eco) == {cut.json()["run_id"]}

        keyed = {"Idempotency-Key": "record-fails"}
        async with table_gone(database_url, "interpreter_executions"):
            unrecorded = await alice.post("/execute-query", json={"query": QUERY},
                                          headers=keyed)
        assert unrecorded.status_code >= 500, unrecorded.text  # the key given back
        (run_id,) = await run_ids(eco) - {cut.json()["run_id"]}
        recorded = await alice.post("/execute-query", json={"query": QUERY}, headers=keyed)
        assert recorded.status_code == 200 and recorded.json()["run_id"] == run_id
