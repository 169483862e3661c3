"""The Runs, Services, Prompts, Usage and Trace pages against real services over HTTP,
each with data in it; a user without the scope a page needs gets a readable 403 page."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from ecosystem import store_spec, token
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.openapi import Operation
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import FINISHED, ServiceRegistration
from llmdocs.services.promptstore.client import PromptStoreClient
from llmdocs.services.promptstore.schemas import AbTestIn, VariantIn, VersionIn
from llmdocs.services.web.charts import bar_chart, dollars
from services.web.portal import csrf_of, signed_in
from services.web.test_ask_page import (
    ASKS,
    EDITOR,
    QUERY,
    portal_with_model,
    sse_events,
)

QUICK = {"query": "summarise things", "doc_type": "summary"}  # fails at once: no sources
VIEWER: dict[str, Any] = {"scopes": (), "roles": ["viewer"]}


@pytest.fixture
async def portal(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                 ) -> Settings:
    """The portal with the services its pages call (not the discovery-agent, whose
    absence the live health shows), the example spec stored, the model the fake."""
    eco = await portal_with_model(settings, serve, monkeypatch,
                                  others=(*ASKS, "logcollector"))
    await store_spec(eco)
    return eco


async def asked_and_done(http: httpx.AsyncClient, spec_id: str | None = None) -> str:
    """Ask through the portal and follow the run to its end; the request's correlation
    id."""
    token_ = csrf_of((await http.get("/ask")).text)
    fields = {"query": QUERY, "csrf_token": token_} | (
        {"spec_document_id": spec_id} if spec_id else {})
    started = await http.post("/ask/run", data=fields)
    assert started.status_code == 303, started.text
    events = await sse_events(http, started.headers["location"] + "/events")
    assert events[-1][0] == "done" and "Done." in events[-1][1], events[-1]
    return started.headers["x-correlation-id"]


async def test_runs_list_filter_show_steps_and_resume_a_failed_run(portal: Settings) -> None:
    alice = issue_token(portal, "user:alice", ["*:read", "*:write"])
    async with OrchestratorClient.for_service(portal, token=alice) as orchestrator:
        failed = await orchestrator.start_run("document-generation", QUICK, wait=30)
    assert failed.status == "failed"
    async with signed_in(portal, "user:alice", **EDITOR) as http:
        await asked_and_done(http)
        listed = await http.get("/runs")
        assert listed.status_code == 200
        assert QUERY in listed.text and f'href="/runs/{failed.id}"' in listed.text
        only_failed = await http.get("/runs", params={"status": "failed"})
        assert f"/runs/{failed.id}" in only_failed.text and QUERY not in only_failed.text
        done_id = re.findall(r'href="/runs/([0-9a-f-]+)"', listed.text)
        done = next(i for i in done_id if i != failed.id)
        shown = await http.get(f"/runs/{done}")
        assert shown.status_code == 200 and "analyze" in shown.text and "<meter" in shown.text
        assert "/resume" not in shown.text  # a completed run has nothing to resume

        page = await http.get(f"/runs/{failed.id}")
        assert f'action="/runs/{failed.id}/resume"' in page.text
        resumed = await http.post(f"/runs/{failed.id}/resume",
                                  data={"csrf_token": csrf_of(page.text)})
        assert resumed.status_code == 303 and resumed.headers["location"] == f"/runs/{failed.id}"
        assert (await http.post(f"/runs/{failed.id}/resume")).status_code == 403  # no CSRF
    async with OrchestratorClient.for_service(portal, token=alice) as orchestrator:
        again = await orchestrator.run(failed.id, wait=30)
    assert again.attempts == 2 and again.status in FINISHED
    async with signed_in(portal, "user:vic", **VIEWER) as viewer:
        theirs = await viewer.get(f"/runs/{failed.id}")  # another user's run: not found
        assert theirs.status_code == 404 and "Not found" in theirs.text


async def test_services_show_registry_live_health_operations_and_tools(
        portal: Settings) -> None:
    registration = ServiceRegistration(
        name="docs-api", base_url="http://127.0.0.1:1/", spec_hash="a" * 64, title="Docs API",
        operations=[Operation(operation_id="listDocs", method="get", path="/docs",
                              summary="List the docs", tag="docs", resource="docs")])
    async with OrchestratorClient.for_service(portal, token=token(portal)) as orchestrator:
        await orchestrator.register_service(registration)
    async with signed_in(portal, "user:vic", **VIEWER) as http:
        page = await http.get("/services")
        assert page.status_code == 200
        assert 'href="/services/docs-api"' in page.text and "Docs API" in page.text
        live = re.search(r"<h3>docstore <span class=\"ok\">healthy</span>.*?</ul>",
                         page.text, re.S)
        assert live and re.search(r"database <span class=\"ok\">up</span>", live.group(0))
        # not started: said, not a 500
        assert '<h3>discovery <span class="bad">unreachable</span>' in page.text
        one = await http.get("/services/docs-api")
        assert one.status_code == 200
        assert "listDocs" in one.text and "/docs" in one.text and "List the docs" in one.text
        assert "Generated tools" in one.text and "docs-api" in one.text
        missing = await http.get("/services/nothing-here")
        assert missing.status_code == 404


async def test_prompts_show_versions_diff_labels_and_ab_test_significance(
        portal: Settings) -> None:
    async with PromptStoreClient.for_service(portal, token=token(portal)) as store:
        outline = await store.prompt("outline")
        base = outline.latest_version
        await store.add_version(outline.id, VersionIn(
            content="Outline the {{ title }} in three short sections.",
            message="shorter outline", labels=["staging"]))
        test = await store.create_test(AbTestIn(
            prompt=outline.id, name="shorter outline", min_samples=2, auto_stop=False,
            variants=[VariantIn(version=base, weight=0.5),
                      VariantIn(version=base + 1, weight=0.5)]))
        for i in range(6):
            await store.record_outcome(test.id, base, subject=f"s{i}", success=i % 3 == 0)
            await store.record_outcome(test.id, base + 1, subject=f"t{i}", success=True)
    async with signed_in(portal, "user:vic", **VIEWER) as http:
        listed = await http.get("/prompts")
        assert listed.status_code == 200
        assert f'href="/prompts/{outline.id}"' in listed.text and "shorter outline" in listed.text
        page = await http.get(f"/prompts/{outline.id}")
        assert page.status_code == 200
        assert f"Changes from v{base} to v{base + 1}" in page.text
        assert "<ins>+Outline the {{ title }} in three short sections.</ins>" in page.text
        assert "staging" in page.text and "production" in page.text
        older = await http.get(f"/prompts/{outline.id}", params={"from": base, "to": base})
        assert "Pick two different versions" in older.text
        results = await http.get(f"/prompts/abtests/{test.id}")
        assert results.status_code == 200
        assert "p-value" in results.text and "Significant" in results.text
        assert re.search(rf"<th scope=\"row\">v{base + 1}</th><td>[0-9.]+</td><td>6</td>",
                         results.text)


async def test_usage_charts_spend_and_budgets_and_trace_shows_the_timeline(
        portal: Settings) -> None:
    async with httpx.AsyncClient(base_url=portal.url_for("gateway"), headers={
            "Authorization": f"Bearer {token(portal)}"}) as gateway:
        set_budget = await gateway.put("/budgets/user/user:alice", json={"limit_usd": 5})
        assert set_budget.status_code == 200, set_budget.text
    async with signed_in(portal, "user:alice", **EDITOR) as alice:
        correlation_id = await asked_and_done(alice)
        mine = await alice.get("/usage")
        assert mine.status_code == 200
        assert 'role="img"' in mine.text and "<desc" in mine.text  # a chart and its words
        assert re.search(r"<th scope=\"row\">fake</th><td>[1-9]", mine.text)  # calls counted
        assert "You may not see this" in mine.text  # budgets are the admin's
        found = await alice.get("/trace", params={"correlation_id": correlation_id},
                                follow_redirects=False)
        assert found.status_code == 303
        assert found.headers["location"] == f"/traces/{correlation_id}"
        timeline = ""
        for _ in range(60):  # the log-collector takes events off the bus as they come
            timeline = (await alice.get(f"/traces/{correlation_id}")).text
            if "llmdocs.document.stored" in timeline:
                break
            await asyncio.sleep(0.5)
        assert "llmdocs.document.stored" in timeline and "+0 ms" in timeline
    async with signed_in(portal, "user:root") as admin:
        everyone = await admin.get("/usage", params={"user_id": "user:alice"})
        assert "user:alice" in everyone.text and "<meter" in everyone.text
        assert "$5.00" in everyone.text  # the budget's limit; the fake model costs nothing


async def test_a_user_without_the_scope_gets_a_readable_403_page(portal: Settings) -> None:
    async with signed_in(portal, "user:dora", scopes=("docs:read",)) as http:
        for path in ("/runs", "/services", "/prompts", "/usage", "/traces/abc"):
            page = await http.get(path)
            assert page.status_code == 403, (path, page.status_code)
            assert "Not allowed" in page.text and "Traceback" not in page.text, path
            assert "<main" in page.text and "<title>" in page.text
        form = await http.get("/ask")  # the form shows; what it may not list is said
        assert form.status_code == 200 and "You may not see this" in form.text
        plan = await http.post("/ask/plan", data={"query": QUERY,
                                                  "csrf_token": csrf_of(form.text)})
        assert plan.status_code == 403 and "Not allowed" in plan.text


def test_a_chart_scales_bars_to_the_largest_and_says_what_it_shows() -> None:
    chart = bar_chart("Spend by model", [("a", 2.0), ("b", 0.5), ("c", 0.0)], dollars)
    assert [round(b.width) for b in chart.bars] == [320, 80, 0]
    assert [b.shown for b in chart.bars] == ["$2.00", "$0.5000", "$0.00"]
    assert chart.summary == "Spend by model: 3 rows; largest a at $2.00."
    assert chart.height == 3 * 34 and chart.bars[1].bar_y > chart.bars[1].text_y
    empty = bar_chart("Spend by day", [], dollars)
    assert empty.summary == "Spend by day: no data." and empty.bars == ()
