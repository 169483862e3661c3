"""An outage of a service the interpreter needs is answered as one: 503 with
Retry-After (the caller may retry), never the 422 of a bad request, and a synchronous
call whose run goes on without it answers 202 with the execution's id. A request its
workflow would refuse starts no run and publishes nothing. Real services
over HTTP; the model is the local fake (tests/services/orchestrator/fakellm.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecosystem import start_services, store_spec
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.interpreter.test_idempotency import generated
from services.interpreter.test_interpreter_input import QUERY, as_user, run_ids
from services.orchestrator.fakellm import fake_llm, provider_env
from services.orchestrator.test_docgen_e2e import events_of
from tables import rows


async def running_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                      latency: float = 0.0) -> tuple[Settings, dict[str, Any]]:
    """The ecosystem with the example spec stored, and each service's running server
    by key, so that a test can stop one."""
    fake = await serve(fake_llm(latency))
    for key, value in provider_env(fake.url).items():
        monkeypatch.setenv(key, value)
    by_port: dict[int | None, Any] = {}

    async def serving(app: Any, port: int | None = None) -> Any:
        by_port[port] = await serve(app, port=port)
        return by_port[port]

    eco = await start_services(settings, serving)
    await store_spec(eco)
    return eco, {key: by_port[eco.port_for(key)] for key in
                 ("docstore", "orchestrator", "gateway", "promptstore", "interpreter")}


def assert_retryable(answer: Any, status: int = 503) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(answer.headers["retry-after"]) > 0


async def test_a_service_down_is_503_with_retry_after_not_the_callers_fault(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_WORKFLOW_OUTAGE_SECONDS", "0")  # an outage that lasts
    eco, servers = await running_eco(settings, serve, monkeypatch, latency=1.0)
    async with as_user(eco, "user:alice") as alice:
        started = asyncio.create_task(alice.post("/execute-query", json={"query": QUERY}))
        while not await run_ids(eco):
            await asyncio.sleep(0.05)
        await servers["docstore"].stop()  # the run started; it cannot store its document
        failed = await started
        assert_retryable(failed)
        execution_id = failed.json()["errors"][0]["execution_id"]
        execution = (await alice.get(f"/executions/{execution_id}")).json()
        assert execution["status"] == "failed" and execution["failure"] == "unavailable"

        # the spec cannot be looked for: the run would fail, so none starts
        unchecked = await alice.post("/execute-query", json={"query": QUERY})
        assert_retryable(unchecked)
        assert await run_ids(eco) == {execution["run_id"]}

        # the doc-store back (it says who is in which space), the orchestrator gone
        await serve(create_app("docstore", eco), port=eco.port_for("docstore"))
        await servers["orchestrator"].stop()  # no run can start
        refused = await alice.post("/execute-query", json={"query": QUERY})
        assert_retryable(refused)
        assert "orchestrator" in refused.json()["detail"]


async def test_a_restart_during_a_run_is_waited_out(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The doc-store down while a run writes and back before the run gives up (the
    workflow's `outage_seconds`): the run stores its document, once; no 503."""
    eco, servers = await running_eco(settings, serve, monkeypatch, latency=1.0)
    async with as_user(eco, "user:alice") as alice:
        started = asyncio.create_task(alice.post("/execute-query", json={"query": QUERY}))
        while not await run_ids(eco):
            await asyncio.sleep(0.05)
        await servers["docstore"].stop()
        await asyncio.sleep(2.0)  # the run reaches its store step while it is down
        await serve(create_app("docstore", eco), port=eco.port_for("docstore"))
        done = await started
    assert done.status_code == 200, done.text
    assert [s["name"] for s in done.json()["steps"]].count("store") == 1
    assert await generated(eco) == [done.json()["document_id"]]


async def test_a_request_refused_by_its_workflow_starts_nothing(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco, _ = await running_eco(settings, serve, monkeypatch)
    async with as_user(eco, "user:alice") as alice:
        planned = (await alice.post("/interpret", json={
            "query": "Create API documentation for the billing service"})).json()
        assert planned["workflow"] is None
        assert "no OpenAPI spec found for 'billing'" in planned["missing"][0]
        refused = await alice.post("/execute-query", json={
            "query": "Create API documentation for the billing service"})
        assert refused.status_code == 422, refused.text
        assert "no OpenAPI spec found" in refused.json()["detail"]
    assert await run_ids(eco) == set()
    assert [e.type for e in await events_of(eco) if e.type.startswith("llmdocs.workflow.")
            ] == []


async def test_a_caller_waiting_when_the_orchestrator_dies_gets_the_execution(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The orchestrator in a process of its own, killed while a synchronous request
    waits for its run: the answer is a 202 with the execution's Location (no 502
    without an id), and the run, resumed by the restarted orchestrator, completes."""
    fake = await serve(fake_llm(1.0))
    for key, value in provider_env(fake.url).items():
        monkeypatch.setenv(key, value)
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    assert eco.jwt_secret is not None
    env = {**os.environ, "LLMDOCS_DATA_DIR": str(eco.data_dir),
           "LLMDOCS_JWT_SECRET": eco.jwt_secret.get_secret_value(),
           "LLMDOCS_WORKFLOW_LEASE_SECONDS": "1.5", "LLMDOCS_LOG_LEVEL": "WARNING",
           **{f"LLMDOCS_{k.upper()}_PORT": str(eco.port_for(k)) for k in SERVICE_NAMES}}

    def orchestrator() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "llmdocs", "serve", "orchestrator"],
                                env=env, cwd=tmp_path, stderr=subprocess.DEVNULL,
                                stdout=(tmp_path / "orchestrator.log").open("ab"))

    for key in ("gateway", "promptstore", "docstore", "interpreter"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    process = orchestrator()
    try:
        await listening(eco, "orchestrator", process)
        await store_spec(eco)
        async with as_user(eco, "user:alice") as alice:
            waiting = asyncio.create_task(alice.post("/execute-query",
                                                     json={"query": QUERY}))
            # the run has started and its caller waits (a run the interpreter has not
            # heard of yet is a 503 to retry)
            while not await rows(eco.database_url, "interpreter_executions"):
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            cut = await waiting
            assert cut.status_code == 202, cut.text
            location = cut.headers["location"]
            assert location == f"/executions/{cut.json()['execution_id']}"
            process = orchestrator()
            await listening(eco, "orchestrator", process)
        # a new connection: the first one idled through the restart, as long as the
        # server keeps it (5 s), and a request on it could meet its close (ReadError)
        async with as_user(eco, "user:alice") as alice:
            done = (await alice.get(location, params={"wait": 60})).json()
            while done["status"] not in ("completed", "failed", "cancelled"):
                done = (await alice.get(location, params={"wait": 60})).json()
            assert done["status"] == "completed", done["error"]
    finally:
        process.terminate()
        process.wait(20)


async def listening(settings: Settings, key: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=settings.url_for(key)) as http:
        for _ in range(1200):  # a hang guard for start-up, not a performance bound
            assert process.poll() is None, "the service exited"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/health", params={"deep": "false"})).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{key} did not start")


async def test_a_kept_202_whose_run_failed_for_an_outage_runs_afresh(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An async keyed request is answered 202 and kept; its run then fails for an outage.
    The same request again is not that failure replayed forever: it starts the next
    run, which stores the one document."""
    monkeypatch.setenv("LLMDOCS_WORKFLOW_OUTAGE_SECONDS", "0")  # an outage that lasts
    eco, servers = await running_eco(settings, serve, monkeypatch, latency=1.0)
    keyed = {"Idempotency-Key": "after-an-outage"}
    body = {"query": QUERY, "async": True}
    async with as_user(eco, "user:alice") as alice:
        accepted = await alice.post("/execute-query", json=body, headers=keyed)
        assert accepted.status_code == 202, accepted.text
        await servers["docstore"].stop()  # the run cannot store its document
        location = accepted.headers["location"]
        failed = (await alice.get(location, params={"wait": 30})).json()
        assert failed["status"] == "failed" and failed["failure"] == "unavailable"
        await serve(create_app("docstore", eco), port=eco.port_for("docstore"))

        again = await alice.post("/execute-query", json=body, headers=keyed)
        assert again.status_code == 202, again.text
        assert again.json()["run_id"] != failed["run_id"]
        done = (await alice.get(again.headers["location"], params={"wait": 30})).json()
        replayed = await alice.post("/execute-query", json=body, headers=keyed)
    assert done["status"] == "completed", done
    assert replayed.status_code == 202 and replayed.json() == again.json()
    assert await generated(eco) == [done["document_id"]]
