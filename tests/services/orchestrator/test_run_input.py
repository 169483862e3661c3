"""Run input the orchestrator refuses when it arrives, and whose runs a caller sees.

Bad ids, filters and input (NUL, a lone surrogate, deep or huge free-form JSON, a spec
URL that is no http(s) URL) are a 422 naming the field before any run exists, on SQLite
and on PostgreSQL. A caller that does not act for anyone sees and changes only its own
runs; services and workflow admins act for anyone. A spec behind a redirect is fetched,
and a redirect loop fails the run with the reason."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner, Result

from ecosystem import token
from llmdocs.cli import app as cli_app
from llmdocs.core.auth import Principal, issue_token, service_token
from llmdocs.core.config import Settings
from llmdocs.core.spaces import Memberships
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.orchestrator import docgen
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import DocRequest
from llmdocs.services.orchestrator.workflow_state import Trace, WorkflowError
from tables import rows, table_gone

RUNS = "/workflows/document-generation/runs"
CHECK = "/workflows/document-generation/check"
QUERY = "Create API documentation for user service"
# a run that fails at once by itself (no sources), so owners can be tested without the
# other services
QUICK = {"query": "summarise things", "doc_type": "summary"}


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def as_user(settings: Settings, subject: str, *scopes: str) -> dict[str, str]:
    scopes = scopes or ("workflows:read", "workflows:write")
    return {"Authorization": f"Bearer {issue_token(settings, subject, scopes)}"}


def alone(app: FastAPI) -> FastAPI:
    """The app with no doc-store to ask for its callers' spaces: they are in `default`
    only (core.spaces)."""
    async def no_memberships(_app: FastAPI, _caller: Principal) -> Memberships:
        return {}

    app.state.memberships = no_memberships
    return app


@pytest.fixture
async def orchestrator(settings: Settings, database_url: str, serve: Any
                       ) -> httpx.AsyncClient:
    """The orchestrator alone, on SQLite or PostgreSQL; the client holds an admin token."""
    own = settings.model_copy(update={"database_url": database_url})
    app = await serve(alone(create_app("orchestrator", own)))
    return httpx.AsyncClient(base_url=app.url, timeout=60,
                             headers={"Authorization": f"Bearer {token(own)}"})


# a body as sent, with what its 422 names
BAD_INPUTS: list[tuple[str, str]] = [
    (json.dumps({"input": {"query": "docs \u0000 please"}}), "query"),
    (json.dumps({"input": {"query": QUERY}, "user_id": "a\u0000b"}), "user_id"),
    (json.dumps({"input": {"query": QUERY, "session_id": "s\u0000"}}), "session_id"),
    ('{"input": {"query": "q q q"}, "user_id": "\\udfff"}', "user_id"),
    *[(json.dumps({"input": {"query": QUERY, "spec_url": url}}), "spec_url")
      for url in ("file:///etc/passwd", "ftp://example.com/spec.yaml", "not a url",
                  "http://[::1", "javascript:alert(1)")],
    (json.dumps({"input": {"query": QUERY, "spec_document_id": "../x"}}), "spec_document_id"),
    (json.dumps({"input": {"query": QUERY, "document_ids": ["ok", "a b"]}}), "document_ids"),
    (json.dumps({"input": {"query": QUERY, "spec_document_id": "x" * 37}}),
     "spec_document_id"),
    # raw JSON: a lone surrogate cannot be encoded, so json.dumps would not send it
    ('{"input": {"query": "q q q", "entities": {"a": "\\ud800"}}}', "entities"),
    ('{"input": {"query": "q q q", "follow_up": {"\\udfff": 1}}}', "follow_up"),
    ('{"input": {"query": "q q q", "entities": ' + nested(600) + "}}", "entities"),
    ('{"input": {"query": "q q q", "entities": ' + nested(17) + "}}", "entities"),
    ('{"input": {"query": "q q q", "follow_up": ' + nested(30) + "}}", "follow_up"),
    (json.dumps({"input": {"query": QUERY, "entities": {"a": "x" * 3_000_000}}}), "entities"),
    (json.dumps({"input": {"query": QUERY, "entities": {str(i): "x" * 3000
                                                         for i in range(30)}}}), "entities"),
    (json.dumps({"input": {"query": QUERY, "entities": {"a": list(range(1000))}}}),
     "entities"),
    (json.dumps({"input": {"query": QUERY, "instructions": ["x" * 4001]}}), "instructions"),
    (json.dumps({"input": {"query": QUERY, "instructions": ["add \u0000"]}}), "instructions"),
]
# the agent's input and a tool's arguments, by the same checks
AGENT_AND_TOOLS: list[tuple[str, str, str]] = [
    ("/workflows/agent/runs", '{"goal": "list \\u0000 services"}', "goal"),
    ("/workflows/agent/runs", '{"goal": "list \\udc00 services"}', "goal"),
    ("/tools/any/call", '{"arguments": ' + nested(40) + "}", "arguments"),
    ("/tools/any/call", '{"arguments": {"a": "\\ud800"}}', "arguments"),
]


async def test_bad_ids_filters_and_input_are_422_before_any_run(
        orchestrator: httpx.AsyncClient) -> None:
    async with orchestrator as http:
        for path in ("/runs/a%00b", "/runs/" + "a" * 37, "/runs/a%20b"):
            assert (await http.get(path)).status_code == 422, path
            for action in ("cancel", "resume"):
                assert (await http.post(f"{path}/{action}")).status_code == 422, path
        for name in ("user_id", "workflow"):
            refused = await http.get("/runs", params={name: "a\u0000b"})
            assert refused.status_code == 422, name
            assert name in refused.text
        checks = [(CHECK, *bad) for bad in BAD_INPUTS]  # refused alike, without a run
        for path, body, field in [(RUNS, *bad) for bad in BAD_INPUTS] + checks \
                + AGENT_AND_TOOLS:
            answer = await http.post(path, content=body.encode(),
                                     headers={"Content-Type": "application/json"})
            assert answer.status_code == 422, (field, answer.text[:300])
            problem = answer.json()
            assert field in json.dumps(problem["errors"]), (field, problem)
            assert len(answer.content) < 4000  # the input is not echoed back
        consistency = await http.post("/workflows/consistency-check/runs", json={
            "input": {"query": QUERY, "service": "user service", "document_id": "a/b"}})
        assert consistency.status_code == 422
        assert "document_id" in consistency.text
        checked = await http.post(CHECK, json={"input": {
            "query": QUERY, "spec_url": "https://api.example.com/openapi.json"}})
        assert checked.status_code == 200, checked.text
        assert checked.json()["input"]["format"] == "markdown"  # as the run would take it
        assert (await http.post("/workflows/nothing/check", json={})).status_code == 404
        assert (await http.get("/runs")).json()["items"] == []  # no run was created


async def test_callers_see_and_change_only_their_own_runs(
        orchestrator: httpx.AsyncClient, settings: Settings) -> None:
    alice, bob = as_user(settings, "user:alice"), as_user(settings, "user:bob")
    admin = as_user(settings, "user:root", "workflows:admin", "workflows:read",
                    "workflows:write")
    interpreter = {"Authorization": f"Bearer {service_token(settings, 'interpreter')}"}
    async with orchestrator as http:
        mine = await http.post(RUNS, json={"input": QUICK}, headers=alice,
                               params={"wait": 30})
        named = await http.post(RUNS, json={"input": QUICK, "user_id": "user:alice"},
                                headers=alice)
        for_bob = await http.post(RUNS, json={"input": QUICK, "user_id": "user:bob"},
                                  headers=alice)
        by_service = await http.post(RUNS, json={"input": QUICK, "user_id": "user:alice"},
                                     headers=interpreter)
        by_admin = await http.post(RUNS, json={"input": QUICK}, headers=admin)
        assert mine.status_code == 200, mine.text
        run_id = mine.json()["id"]
        assert mine.json()["user_id"] == named.json()["user_id"] == "user:alice"
        assert mine.json()["status"] == "failed"  # no sources: fails by itself
        assert for_bob.status_code == 403 and "workflows:admin" in for_bob.text
        assert by_service.json()["user_id"] == "user:alice"
        assert by_admin.json()["user_id"] == "anonymous"

        # another's run is answered like a run that does not exist
        unknown = "0190aaaa-0000-7000-8000-000000000000"
        for path, method in ((f"/runs/{run_id}", "GET"), (f"/runs/{run_id}/cancel", "POST"),
                             (f"/runs/{run_id}/resume", "POST")):
            theirs = await http.request(method, path, headers=bob)
            missing = await http.request(method, path.replace(run_id, unknown), headers=bob)
            assert theirs.status_code == missing.status_code == 404, (path, theirs.text)
            assert theirs.json()["detail"] == missing.json()["detail"].replace(unknown, run_id)
        assert (await http.get(f"/runs/{run_id}", headers=alice)).status_code == 200
        assert (await http.post(f"/runs/{run_id}/cancel", headers=alice)).status_code == 409
        assert (await http.post(f"/runs/{run_id}/resume", headers=alice)).status_code == 202

        def users(page: httpx.Response) -> set[str]:
            assert page.status_code == 200, page.text
            return {run["user_id"] for run in page.json()["items"]}

        assert users(await http.get("/runs", headers=bob)) == set()
        assert users(await http.get("/runs", params={"user_id": "user:alice"},
                                    headers=bob)) == set()
        assert users(await http.get("/runs", headers=alice)) == {"user:alice"}
        assert len((await http.get("/runs", headers=alice)).json()["items"]) == 3
        assert users(await http.get("/runs", headers=admin)) == {"user:alice", "anonymous"}
        assert users(await http.get("/runs", params={"user_id": "user:alice"},
                                    headers=interpreter)) == {"user:alice"}
        assert (await http.get(f"/runs/{run_id}", headers=admin)).status_code == 200
        # the client names no user unless asked: a user's own token starts its own run
        own_token = alice["Authorization"].removeprefix("Bearer ")
        async with OrchestratorClient(str(http.base_url), token=own_token) as client:
            assert (await client.start_run("document-generation", QUICK)
                    ).user_id == "user:alice"


def redirecting_spec_server() -> Starlette:
    """A spec behind a 301, a redirect loop, and a redirect to a blocked network."""

    async def spec(_: Request) -> Response:
        return PlainTextResponse(user_service_spec(), media_type="application/yaml")

    async def moved(_: Request) -> Response:
        return RedirectResponse("/openapi.yaml", status_code=301)

    async def loop(_: Request) -> Response:
        return RedirectResponse("/loop", status_code=302)

    async def metadata(_: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    return Starlette(routes=[Route("/openapi.yaml", spec), Route("/r", moved),
                             Route("/loop", loop), Route("/metadata", metadata)])


@pytest.fixture
def short_prose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few tokens per model call keep the CPU model quick; the structure is unchanged."""
    monkeypatch.setenv("LLMDOCS_WORKFLOW_PROSE_TOKENS", "16")
    monkeypatch.setenv("LLMDOCS_WORKFLOW_REVIEW_TOKENS", "16")


async def test_a_spec_behind_a_redirect_generates_and_a_loop_fails_the_run(
        short_prose: None, eco: Settings, serve: Any) -> None:
    site = await serve(redirecting_spec_server())
    async with httpx.AsyncClient(base_url=eco.url_for("orchestrator"), timeout=600,
                                 headers={"Authorization": f"Bearer {token(eco)}"}) as http:

        async def run(path: str) -> dict[str, Any]:
            answer = await http.post(RUNS, params={"wait": 300}, json={"input": {
                "query": "Create API documentation", "spec_url": site.url + path}})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        moved, looping, blocked = await run("/r"), await run("/loop"), await run("/metadata")
    assert moved["status"] == "completed", moved["error"]
    assert moved["result"]["provenance"]["data_lineage"]["spec"]["url"] == site.url + "/r"
    assert looping["status"] == "failed" and "TooManyRedirects" in looping["error"]
    assert blocked["status"] == "failed" and "blocked network" in blocked["error"]


async def test_a_request_refused_today_that_reaches_a_step_fails_the_run_with_a_reason(
        settings: Settings, serve: Any) -> None:
    """A run recorded before the checks (its input in the record and checkpoints) fails
    with the reason when resumed; a step given a malformed spec URL raises the
    workflow's error, never a crash."""
    app = create_app("orchestrator", settings)
    served = await serve(app)
    runner = app.state.runner
    old = await runner.store.create(
        "document-generation", "1", "u1", {"query": QUERY, "spec_url": "http://[::1"},
        "a replica that died", 60, lambda run: runner._event("started", run))
    async with httpx.AsyncClient(base_url=served.url, timeout=60,
                                 headers={"Authorization": f"Bearer {token(settings)}"}) as http:
        assert (await http.post(f"/runs/{old.id}/cancel")).status_code == 200
        assert (await http.post(f"/runs/{old.id}/resume")).status_code == 202
        failed = (await http.get(f"/runs/{old.id}", params={"wait": 30})).json()
    assert failed["status"] == "failed"
    assert failed["error"].startswith("the request is not valid: spec_url: ")

    nodes = docgen.DocGen(runner.deps)
    with pytest.raises(WorkflowError, match="spec_url"):
        await nodes.gather_context({"request": {"query": QUERY, "spec_url": "http://[::1"}})
    for url in ("http://[::1", "http://a\x00b/openapi.json", "http://:99999/x"):
        with pytest.raises(WorkflowError, match="spec URL"):
            await nodes._spec(DocRequest.model_construct(query=QUERY, spec_url=url),
                              Trace("gather_context"))


async def test_the_cli_on_the_machine_acts_for_anyone(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`llmdocs runs list|show|resume` with the machine's own token sees a user's run."""
    served = await serve(alone(create_app("orchestrator", settings)))
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        started = await http.post(RUNS, json={"input": QUICK}, params={"wait": 30},
                                  headers=as_user(settings, "user:alice"))
    run_id = started.json()["id"]
    monkeypatch.delenv("LLMDOCS_TOKEN", raising=False)
    assert settings.jwt_secret is not None
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", settings.jwt_secret.get_secret_value())
    monkeypatch.setenv("LLMDOCS_ORCHESTRATOR_PORT", str(served.port))

    async def invoke(*args: str) -> Result:
        # the CLI runs its own event loop, so it gets a thread of its own
        return await asyncio.to_thread(CliRunner().invoke, cli_app, ["runs", *args])

    listed, shown = await invoke("list"), await invoke("show", run_id)
    resumed = await invoke("resume", run_id)
    assert listed.exit_code == 0 and run_id[:8] in listed.output, listed.output
    assert shown.exit_code == 0 and '"user:alice"' in shown.output, shown.output
    assert resumed.exit_code == 0 and "attempt 2" in resumed.output, resumed.output


async def test_a_spec_whose_values_no_column_holds_fails_the_run_with_the_reason(
        orchestrator: httpx.AsyncClient, serve: Any) -> None:
    """The reason quotes the spec's `openapi` value, a NUL and a lone surrogate in it:
    the failure could not be recorded, and the run stayed running (to be resumed and fail
    again once its lease ran out)."""
    async def spec(_: Request) -> Response:
        return Response('{"openapi": "9\\u0000\\ud800", "paths": {}}',
                        media_type="application/json")

    site = await serve(Starlette(routes=[Route("/openapi.json", spec)]))
    async with orchestrator as http:
        answer = await http.post(RUNS, params={"wait": 30}, json={"input": {
            "query": QUERY, "spec_url": site.url + "/openapi.json"}})
        assert answer.status_code == 200, answer.text
        run = answer.json()
        assert run["status"] == "failed", run
        assert "not an OpenAPI 3.0/3.1 document (openapi: 9\\x00\\ud800)" in run["error"]
        assert "\\ud800" in run["steps"][-1]["detail"]
        assert (await http.get(f"/runs/{run['id']}")).json()["error"] == run["error"]


async def test_a_keyed_start_whose_wait_fails_answers_202_and_keeps_its_key(
        orchestrator: httpx.AsyncClient, database_url: str, serve: Any) -> None:
    """Once the run exists, a failure while waiting for its end is its 202: a 5xx
    would give the key back, and the retry would start a second run."""
    fetched = asyncio.Event()

    async def slow_spec(_: Request) -> Response:
        await fetched.wait()
        return PlainTextResponse(user_service_spec(), media_type="application/yaml")

    site = await serve(Starlette(routes=[Route("/openapi.yaml", slow_spec)]))
    start = {"input": {"query": QUERY, "spec_url": site.url + "/openapi.yaml"}}
    keyed = {"Idempotency-Key": "wait-fails"}
    async with orchestrator as http:
        first = asyncio.create_task(http.post(RUNS, json=start, headers=keyed,
                                              params={"wait": 1}))
        while not await rows(database_url, "orchestrator_runs"):
            await asyncio.sleep(0.05)
        async with table_gone(database_url, "orchestrator_runs"):  # the wait's read fails
            cut = await first
        fetched.set()
        assert cut.status_code == 202, cut.text
        assert cut.headers["location"] == f"/runs/{cut.json()['id']}"
        again = await http.post(RUNS, json=start, headers=keyed, params={"wait": 1})
        assert again.status_code == 202 and again.json() == cut.json()
        assert [r["id"] for r in (await http.get("/runs")).json()["items"]] == [
            cut.json()["id"]]


async def test_a_run_started_again_with_its_key_is_the_same_run(
        orchestrator: httpx.AsyncClient, settings: Settings) -> None:
    start = {"input": {"query": QUERY, "spec_url": "https://api.example.com/openapi.json"}}
    keyed = {**as_user(settings, "user:alice"), "Idempotency-Key": "start-1"}
    async with orchestrator as http:
        first = await http.post(RUNS, json=start, headers=keyed)
        assert first.status_code == 202, first.text
        again = await http.post(RUNS, json=start, headers=keyed)
        assert again.status_code == 202 and again.json() == first.json()
        assert again.headers["location"] == f"/runs/{first.json()['id']}"
        other = await http.post(RUNS, headers=keyed, json={
            "input": {**start["input"], "format": "html"}})
        assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
        bobs = await http.post(RUNS, json=start, headers={
            **as_user(settings, "user:bob"), "Idempotency-Key": "start-1"})
        assert bobs.status_code == 202 and bobs.json()["id"] != first.json()["id"]
        runs = (await http.get("/runs")).json()["items"]
        assert sorted(r["id"] for r in runs) == sorted([first.json()["id"],
                                                        bobs.json()["id"]])
