"""Bad input to the discovery-agent over real HTTP on PostgreSQL, beside a service of
our own that answers what it is told to: a URL the agent cannot keep or would fetch
with credentials is a 422 naming the field, and what is stored stays as it was; text a
spec or a health report brings that no column can hold (NUL, a lone surrogate) is kept
escaped, not a 500; a health report of any shape is read, within a size and a time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

from badinput import NUL, SURROGATE, TEXT, assert_refused, body
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.discovery.test_discovery import endless

OK_SPEC = {"openapi": "3.0.0", "info": {"title": "ok", "version": "1"},
           "paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}


@dataclass
class Agent:
    discovery: httpx.AsyncClient
    registry: httpx.AsyncClient
    target: str  # the base URL of the service below
    health: dict[str, Any]  # what its /health answers

    async def stored(self) -> Any:
        runs = await self.discovery.get("/discoveries", params={"limit": 1000})
        services = await self.registry.get("/registry/services")
        return runs.json(), (await self.discovery.get("/watch/status")).json(), services.json()


def target(health: dict[str, Any]) -> FastAPI:
    """A service with a spec at /specs/ok, specs whose `openapi` or `swagger` is a text
    no column holds, a /health that answers `health` (a 503, so its body is read), one
    that never ends and one too large to read."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/specs/ok")
    async def ok() -> dict[str, Any]:
        return OK_SPEC

    @api.get("/specs/{key}/{kind}")
    async def odd(key: str, kind: str) -> Response:
        return Response(body({key: TEXT[kind]}), media_type="application/json")

    @api.get("/health")
    async def report() -> Response:
        return Response(body(health), status_code=503, media_type="application/json")

    @api.get("/drip/health")
    async def drip() -> StreamingResponse:
        return StreamingResponse(endless(0.1), media_type="application/json")

    @api.get("/large/health")
    async def large() -> Response:
        return Response(b'{"status": "healthy", "x": "' + b"a" * 2_000_000 + b'"}',
                        media_type="application/json")

    return api


@pytest.fixture
async def agent(serve: Any, settings: Settings, pg_url: str,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Agent]:
    """The orchestrator and the discovery-agent on PostgreSQL, one service discovered."""
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_FETCH_TIMEOUT_SECONDS", "2")
    eco = settings.model_copy(update={"database_url": pg_url} | {
        f"{key}_port": free_port() for key in SERVICE_NAMES})
    for key in ("orchestrator", "discovery"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    health: dict[str, Any] = {"status": "healthy"}
    served = await serve(target(health))
    headers = {"Authorization": f"Bearer {issue_token(eco, 'user:admin', ['*'])}"}
    async with httpx.AsyncClient(base_url=eco.url_for("discovery"), headers=headers,
                                 timeout=20) as discovery, \
            httpx.AsyncClient(base_url=eco.url_for("orchestrator"), headers=headers,
                              timeout=20) as registry:
        first = await discovery.post("/discover", json={
            "name": "ok", "base_url": served.url, "spec_url": "/specs/ok"})
        assert first.json()["status"] == "registered", first.text
        yield Agent(discovery, registry, served.url, health)


def url_cases(base: str) -> dict[str, tuple[str, dict[str, str]]]:
    """What each case sends: the field named in the refusal, and the URLs."""
    return {
        "base_url past its column": ("base_url", {"base_url": f"{base}/{'a' * 990}"}),
        "base_url with credentials": ("base_url", {"base_url": base.replace(
            "http://", "http://bob:s3cret@")}),
        "base_url with a query": ("base_url", {"base_url": f"{base}/?x=1"}),
        "spec_url with a NUL": ("spec_url", {"base_url": base, "spec_url": f"/a{NUL}"}),
        "absolute spec_url with a NUL": ("spec_url", {"base_url": base,
                                                      "spec_url": f"{base}/{NUL}"}),
        "spec_url with credentials": ("spec_url", {"base_url": base, "spec_url": base.replace(
            "http://", "http://bob:s3cret@") + "/specs/ok"}),
        "spec_url past 2000 joined": ("spec_url", {"base_url": base,
                                                   "spec_url": "/specs/ok?" + "a" * 1990}),
    }


@pytest.mark.parametrize("case", sorted(url_cases("http://x")))
async def test_a_url_the_agent_cannot_keep_is_a_422(agent: Agent, case: str) -> None:
    field, urls = url_cases(agent.target)[case]
    before = await agent.stored()
    answer = await agent.discovery.post("/discover", json={"name": "bad", **urls})
    assert_refused(answer, field)
    assert await agent.stored() == before


@pytest.mark.parametrize("kind", sorted(TEXT))
@pytest.mark.parametrize("key", ["openapi", "swagger"])
async def test_spec_text_no_column_holds_is_kept_escaped(agent: Agent, key: str, kind: str
                                                         ) -> None:
    """A spec that is none (its `openapi` or `swagger` quoted in the reason) is a failed
    discovery, as any other: it was a 500 from the database."""
    answer = await agent.discovery.post("/discover", json={
        "name": "odd", "base_url": agent.target, "spec_url": f"/specs/{key}/{kind}"})
    assert answer.status_code == 200, answer.text
    run = answer.json()
    escaped = TEXT[kind].encode("unicode_escape").decode()  # a\x00b, a\ud800b
    assert run["status"] == "failed" and escaped in run["error"], run
    [stored] = (await agent.discovery.get("/discoveries", params={"name": "odd"})).json()
    assert stored["error"] == run["error"]


@pytest.mark.parametrize(("report", "status", "reason"), [
    ({"status": "degraded", "dependencies": [{"name": NUL, "status": "down"}]},
     "degraded", "dependencies not up: a\\x00b"),
    ({"status": "degraded", "dependencies": [{"name": SURROGATE, "status": "down"}]},
     "degraded", "dependencies not up: a\\ud800b"),
    ({"status": "degraded", "dependencies": 5}, "degraded", None),
    ({"status": ["healthy"]}, "unhealthy", "HTTP 503"),
    ({"status": {"a": 1}}, "unhealthy", "HTTP 503"),
], ids=["nul-name", "surrogate-name", "number-dependencies", "list-status", "dict-status"])
async def test_a_health_report_of_any_shape_is_read(
        agent: Agent, report: dict[str, Any], status: str, reason: str | None) -> None:
    """Discovery and the watch both read it: a report they cannot use is the service's
    HTTP status; a name no column holds is kept escaped (each was a 500 of the poll)."""
    agent.health.update(report)
    found = await agent.discovery.post("/discover", json={
        "name": "odd", "base_url": agent.target, "spec_url": "/specs/ok"})
    assert found.json()["status"] == "registered", found.text
    agent.health.clear()
    agent.health.update(status="healthy")
    poll = await agent.discovery.post("/watch/poll")
    assert poll.status_code == 200, poll.text
    history = (await agent.discovery.get("/watch/history",
                                         params={"service": "odd"})).json()
    assert [(h["to"], h["reason"]) for h in history] == [("healthy", None), (status, reason)]


@pytest.mark.parametrize(("where", "health", "reason"), [
    ("/drip", "unknown", "no whole answer within 2 s"),
    ("/large", "unhealthy", "/large/health is 2000030 bytes; the limit is 1048576")])
async def test_a_health_answer_is_read_within_a_time_and_a_size(
        agent: Agent, where: str, health: str, reason: str) -> None:
    """One that never ends held the request (and a poll) for ever, and is now an
    unreachable service; a large one was read whole into memory."""
    answer = await agent.discovery.post("/discover", json={
        "name": "odd", "base_url": agent.target + where,
        "spec_url": agent.target + "/specs/ok"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["health"] == health
    states = (await agent.discovery.get("/watch/status")).json()
    assert reason in json.dumps([answer.json(), states])
