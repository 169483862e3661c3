"""The Ask page against real services over HTTP, the model the local fake: the plan
before the run, the steps arriving as server-sent events, the document at the end;
cancelling a slow run; forms refused without their CSRF token."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from ecosystem import store_spec
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from services.orchestrator.fakellm import fake_llm, provider_env
from services.web.portal import csrf_of, signed_in, start_portal

QUERY = "Create API documentation for the user service"
ASKS = ("gateway", "promptstore", "docstore", "orchestrator", "interpreter", "analysis")
EDITOR: dict[str, Any] = {"scopes": (), "roles": ["editor"]}


async def portal_with_model(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                            latency: float = 0.0, others: tuple[str, ...] = ASKS
                            ) -> Settings:
    """The portal and `others` over HTTP, their model the fake on loopback."""
    model = await serve(fake_llm(latency))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    return await start_portal(settings, serve, others)


async def sse_events(http: httpx.AsyncClient, path: str) -> list[tuple[str, str]]:
    """The (event, data) pairs of a stream, until it ends."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    async with http.stream("GET", path, timeout=120) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                events.append((name, "\n".join(data)))
                name, data = "message", []
    return events


async def test_ask_plans_then_streams_the_steps_to_the_document(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await portal_with_model(settings, serve, monkeypatch)
    spec_id = await store_spec(eco)
    async with signed_in(eco, "user:alice", **EDITOR) as http:
        form = await http.get("/ask")
        assert form.status_code == 200
        for field in ('name="query"', 'name="format"', 'name="spec_url"',
                      f'value="{spec_id}"'):  # the stored spec is offered
            assert field in form.text, field
        token = csrf_of(form.text)
        asked = {"query": QUERY, "format": "markdown", "spec_document_id": spec_id,
                 "spec_url": "", "service": ""}

        refused = await http.post("/ask/plan", data=asked)  # no CSRF token
        assert refused.status_code == 403 and "reload the page" in refused.text

        plan = await http.post("/ask/plan", data={**asked, "csrf_token": token})
        assert plan.status_code == 200, plan.text
        assert "document-generation" in plan.text and 'action="/ask/run"' in plan.text

        started = await http.post("/ask/run", data={**asked, "csrf_token": token})
        assert started.status_code == 303, started.text
        page_path = started.headers["location"]
        execution_id = page_path.rsplit("/", 1)[1]
        page = await http.get(page_path)
        assert page.status_code == 200 and "Your request" in page.text
        traced = started.headers["x-correlation-id"]  # the page links to its trace
        assert f'href="/traces/{traced}"' in page.text

        events = await sse_events(http, f"{page_path}/events")
        steps = [data for name, data in events if name == "step"]
        assert any("analyze" in s for s in steps) and any("store" in s for s in steps)
        assert events[-1][0] == "done"
        found = re.search(r'href="/documents/([0-9a-f-]+)"', events[-1][1])
        assert found, events[-1][1]
        alice = issue_token(eco, "user:alice", ["docs:read"])
        async with DocStoreClient.for_service(eco, token=alice) as docs:
            made = await docs.get(found.group(1))
        assert made.metadata.get("run_id") and "User" in (made.content or "")
        assert (await http.get(f"/documents/{found.group(1)}")).status_code == 200

        # the finished run's page shows everything without a stream, and its document
        done = await http.get(page_path)
        assert "sse-connect" not in done.text and found.group(1) in done.text
        # a stream that starts after the steps the page showed sends only the end
        late = await sse_events(http, f"{page_path}/events?after={len(steps)}")
        assert [name for name, _ in late] == ["done"]
        # cancelling what has ended leaves it as it ended
        cancel = await http.post(f"/ask/executions/{execution_id}/cancel",
                                 data={"csrf_token": token})
        assert cancel.status_code == 303
        assert "Done." in (await http.get(page_path)).text


async def test_a_request_without_a_spec_shows_what_is_missing_and_bad_input_is_422(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await portal_with_model(settings, serve, monkeypatch)
    async with signed_in(eco, "user:alice", **EDITOR) as http:
        token = csrf_of((await http.get("/ask")).text)
        vague = await http.post("/ask/plan", data={
            "query": "Create API documentation", "csrf_token": token})
        assert vague.status_code == 200
        assert "Before it can run" in vague.text and 'action="/ask/run"' not in vague.text
        bad = await http.post("/ask/plan", data={
            "query": QUERY, "spec_url": "not a url", "csrf_token": token})
        assert bad.status_code == 422 and 'role="alert"' in bad.text
        assert "Traceback" not in bad.text and "not a url" in bad.text  # kept in the form
        missing = await http.get("/ask/executions/0190aaaa-0000-7000-8000-000000000000")
        assert missing.status_code == 404 and "Not found" in missing.text


async def test_cancel_stops_a_running_request(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await portal_with_model(settings, serve, monkeypatch, latency=2.0)
    spec_id = await store_spec(eco)
    async with signed_in(eco, "user:alice", **EDITOR) as http:
        token = csrf_of((await http.get("/ask")).text)
        started = await http.post("/ask/run", data={
            "query": QUERY, "spec_document_id": spec_id, "csrf_token": token})
        assert started.status_code == 303
        page_path = started.headers["location"]
        running = await http.get(page_path)
        assert "sse-connect" in running.text and "/cancel" in running.text
        cancel = await http.post(f"{page_path}/cancel", data={"csrf_token": token})
        assert cancel.status_code == 303
        events = await sse_events(http, f"{page_path}/events")
        assert events[-1][0] == "done" and "Cancelled" in events[-1][1]
