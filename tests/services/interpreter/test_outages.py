"""An outage of a service the interpreter needs is answered as one: 503 with
Retry-After (the caller may retry), never the 422 of a bad request, and a synchronous
call whose run goes on without it answers 202 with the execution's id. A request its
workflow would refuse starts no run and publishes nothing. Real services
over HTTP; the model is the local fake (tests/services/orchestrator/fakellm.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecosystem import start_services, store_spec
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from services.interpreter.test_interpreter_input import QUERY, as_user, run_ids
from services.orchestrator.fakellm import fake_llm, provider_env
from services.orchestrator.test_docgen_e2e import events_of


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

        await servers["orchestrator"].stop()  # no run can start
        refused = await alice.post("/execute-query", json={"query": QUERY})
        assert_retryable(refused)
        assert "orchestrator" in refused.json()["detail"]


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
