"""Analytics from events, the quality tools, and optimization through the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from llmdocs.core.config import Settings
from llmdocs.core.events.envelope import make_event
from llmdocs.core.resources import Resources
from llmdocs.devservers import free_port
from llmdocs.migrations import upgrade
from llmdocs.services import create_app
from llmdocs.services.promptstore.prompts import LLM_COMPLETED
from llmdocs.services.promptstore.service import PromptStore


async def wait_for(http: httpx.AsyncClient, path: str, done: Any) -> dict[str, Any]:
    """Poll until `done(body)`; the consumer applies events asynchronously."""
    for _ in range(200):
        body: dict[str, Any] = (await http.get(path)).json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never reached the expected state: {body}")


async def test_usage_per_version_from_events(http: httpx.AsyncClient,
                                             settings: Settings) -> None:
    made = (await http.post("/prompts", json={"name": "p", "content": "Hi {{ x }}"})).json()
    pid = made["id"]
    await http.get("/prompts/by-name/p")
    await http.post("/prompts/by-name/p/render", json={"variables": {"x": "a"}})
    resources = Resources.from_settings(settings)
    await resources.open(upgrade)
    try:
        for tokens, ok in (({"prompt": 10, "completion": 30}, True), (100, False)):
            await resources.events.publish(make_event("gateway", LLM_COMPLETED, {
                "prompt_id": pid, "prompt_version": 1, "tokens": tokens, "cost": 0.25,
                "latency_ms": 120.0, "success": ok, "provider": "local"}))
        await resources.events.publish(make_event("gateway", LLM_COMPLETED, {"tokens": 5}))
        body = await wait_for(http, f"/analytics/prompts/{pid}",
                              lambda b: b["totals"]["completions"] == 2
                              and b["totals"]["uses"] == 2)
    finally:
        await resources.close()
    [v1] = body["versions"]
    assert v1["version"] == 1 and v1["uses"] == 2 and v1["renders"] == 1
    assert (v1["tokens"], v1["cost"], v1["mean_latency_ms"]) == (140, 0.5, 120.0)
    assert (v1["successes"], v1["failures"], v1["success_rate"]) == (1, 1, 0.5)


async def test_the_same_event_counts_once(settings: Settings, database_url: str) -> None:
    resources = Resources.from_settings(settings.model_copy(update={"database_url":
                                                                    database_url}))
    await resources.open(upgrade)
    try:
        store = PromptStore(resources.database, resources.cache, resources.events)
        event = make_event("gateway", LLM_COMPLETED, {"prompt_id": "p1", "tokens": 7,
                                                       "cost": 1.0, "latency_ms": 3})
        for _ in range(2):
            await store.apply_events([event])
        await store.apply_events([event, make_event("gateway", LLM_COMPLETED, {
            "prompt_id": "p1", "tokens": 1})])
        async with resources.database.session() as session:
            from sqlalchemy import select

            from llmdocs.services.promptstore.models import PromptUsage
            row = (await session.scalars(select(PromptUsage))).one()
    finally:
        await resources.close()
    assert (row.version, row.completions, row.tokens, row.cost) == (0, 2, 8, 1.0)


async def test_lint_finds_each_kind_of_problem(http: httpx.AsyncClient) -> None:
    content = ("# Task\nBe concise. Always use tables.\n## Details\n\n## Style\n"
               "Explain {{ topic }} in great detail. Never use tables.\n"
               + "filler " * 2000)
    body = (await http.post("/prompts/lint", json={
        "content": content, "variables": ["audience"]})).json()
    codes = {f["code"] for f in body["findings"]}
    assert codes == {"undeclared-variable", "unused-variable", "empty-section",
                     "conflicting-instructions", "very-long"}
    assert body["ok"] is False and body["variables_used"] == ["topic"]
    empty = next(f for f in body["findings"] if f["code"] == "empty-section")
    assert empty["line"] == 3
    conflicts = [f["message"] for f in body["findings"]
                 if f["code"] == "conflicting-instructions"]
    assert any("brevity vs. detail" in m for m in conflicts)
    assert any("Never use tables" in m for m in conflicts)

    clean = (await http.post("/prompts/lint", json={"content": "Summarise {{ text }}."}))
    assert clean.json() == {"ok": True, "findings": [], "variables_used": ["text"],
                            "estimated_tokens": 6}
    broken = (await http.post("/prompts/lint", json={"content": "{% if %}"})).json()
    assert broken["ok"] is False and broken["findings"][0]["code"] == "template-error"
    stored = (await http.post("/prompts", json={"name": "s", "content": "Hi {{ x }}"})).json()
    assert (await http.post(f"/prompts/{stored['id']}/lint", json={})).json()["ok"] is True


async def fake_gateway(serve: Any, answers: list[str]) -> Any:
    """A local stand-in for our own llm-gateway's `/query` (not a paid API): it answers
    in the gateway's wire format, with canned texts in turn."""
    app = FastAPI()
    calls: list[dict[str, Any]] = []

    @app.post("/query")
    async def query(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(body)
        return {"response": answers[(len(calls) - 1) % len(answers)], "provider": "local",
                "model": "fake-1", "tokens": {"total": 10}, "cost": 0.0, "cached": False}

    running = await serve(app)
    running.calls = calls
    return running


async def test_bias_check_word_list_and_llm(serve: Any, settings: Settings,
                                            auth: Any) -> None:
    settings.http_retries = 1
    settings.gateway_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=store.url + "/api/v1",
                                 headers=auth("prompts:*")) as http:
        made = (await http.post("/prompts", json={
            "name": "b", "content": "Ask the chairman.\nDo a quick sanity check of the "
                                    "whitelist, guys."})).json()
        body = (await http.post(f"/prompts/{made['id']}/bias-check", json={})).json()
        found = [(f["message"].split("'")[1], f["line"], f["suggestion"])
                 for f in body["findings"]]
        assert found == [("chairman", 1, "chair, chairperson"),
                         ("sanity check", 2, "quick check, confidence check"),
                         ("whitelist", 2, "allowlist"), ("guys", 2, "everyone, folks, team")]
        assert body["llm_check"] == "skipped"
        down = (await http.post(f"/prompts/{made['id']}/bias-check", json={"llm": True}))
        assert down.status_code == 200
        assert down.json()["llm_check"] == "unavailable"
        assert "llm-gateway" in down.json()["llm_notes"]
        assert len(down.json()["findings"]) == 4

        optimize = await http.post(f"/optimization/prompts/{made['id']}/optimize",
                                   json={"optimization_type": "clarity"})
        assert optimize.status_code == 503
        assert "llm-gateway is unavailable" in optimize.json()["detail"]


async def test_optimize_stores_valid_variations_as_drafts(serve: Any, settings: Settings,
                                                          auth: Any) -> None:
    gateway = await fake_gateway(serve, [
        "```\nDescribe {{ topic }} clearly for {{ audience }}.\n```",
        "Describe the topic for everyone.",  # drops the variables: rejected
        "none"])
    settings.gateway_url = gateway.url
    store = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=store.url + "/api/v1",
                                 headers=auth("prompts:*")) as http:
        made = (await http.post("/prompts", json={
            "name": "o", "content": "Write about {{ topic }} for {{ audience }}"})).json()
        answer = await http.post(f"/optimization/prompts/{made['id']}/optimize",
                                 json={"optimization_type": "clarity", "variations": 2})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        [created] = body["created"]
        assert created["version"] == 2 and created["state"] == "draft"
        assert created["content"] == "Describe {{ topic }} clearly for {{ audience }}."
        assert created["message"].startswith("optimize:clarity of v1 via local/fake-1")
        assert "missing ['audience', 'topic']" in body["rejected"][0]["reason"]
        assert "{{ topic }}" in gateway.calls[0]["prompt"]
        # production is untouched; the draft is ready for an A/B test
        assert (await http.get("/prompts/by-name/o")).json()["version"] == 1
        test = await http.post("/abtests", json={"prompt": "o", "name": "opt", "variants": [
            {"version": 1, "weight": 50}, {"version": 2, "weight": 50}]})
        assert test.status_code == 201
        bias = (await http.post(f"/prompts/{made['id']}/bias-check", json={"llm": True}))
        assert bias.json()["llm_check"] == "done" and bias.json()["llm_notes"] == "none"


async def test_llm_tools_through_the_real_gateway_and_local_model(
    serve: Any, settings: Settings, auth: Any
) -> None:
    """The real llm-gateway with the built-in SmolLM2 model behind the quality tools."""
    gateway = await serve(create_app("gateway", settings))
    settings.gateway_url = gateway.url
    store = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=store.url + "/api/v1", headers=auth("prompts:*"),
                                 timeout=120) as http:
        made = (await http.post("/prompts", json={
            "name": "real", "content": "Summarise {{ text }} for the chairman."})).json()
        bias = (await http.post(f"/prompts/{made['id']}/bias-check", json={"llm": True}))
        assert bias.status_code == 200
        assert bias.json()["llm_check"] == "done" and bias.json()["llm_notes"]
        assert [f["message"].split("'")[1] for f in bias.json()["findings"]] == ["chairman"]

        answer = await http.post(f"/optimization/prompts/{made['id']}/optimize",
                                 json={"optimization_type": "clarity", "variations": 1})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        # a 135M model may or may not keep the variable; either way the outcome is explicit
        assert len(body["created"]) + len(body["rejected"]) == 1
        for draft in body["created"]:
            assert "{{ text }}" in draft["content"] and draft["state"] == "draft"
            assert "via local/" in draft["message"]
        for rejected in body["rejected"]:
            assert rejected["reason"]
