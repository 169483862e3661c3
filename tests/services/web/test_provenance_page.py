"""The provenance page of a document a real run generated: its steps on a timeline, the
services chain, the prompts with their versions, each model call (provider, model,
tokens, cost, latency, cache, routing reason), the sources and the quality scores.
Real services over HTTP; the model is the local fake speaking the OpenAI wire format."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.services import create_app
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import ecosystem_with
from services.web.portal import docs_as, signed_in


async def test_provenance_shows_the_run_and_its_model_calls(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    await serve(create_app("web", eco), port=eco.port_for("web"))
    spec_id = await store_spec(eco)
    async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
        run = await runs.start_run("document-generation", {
            "query": "Create API documentation for user service",
            "spec_document_id": spec_id, "format": "markdown"}, wait=60)
    assert run.status == "completed" and run.result, run.error
    document_id = run.result["document_id"]
    async with InterpreterClient.for_service(eco, token=token(eco)) as interpreter:
        record = await interpreter.provenance(document_id)
    calls, prompts = record["llm_calls"], record["prompts_used"]
    assert calls and prompts

    async with signed_in(eco, "user:u1") as browser:
        page = await browser.get(f"/documents/{document_id}/provenance")
        assert page.status_code == 200, page.text
        html = page.text
        table = html.split('class="data model-calls"', 1)[1].split("</table>", 1)[0]
        assert table.count("<tr>") == len(calls) + 1  # a row per call, and the header
        for call in calls:
            for value in (call["provider"], call["model"], call["routing_reason"]):
                assert str(value) in table
            assert f"{call['tokens']['prompt']} / {call['tokens']['completion']}" in table
            assert f"{call['latency_ms']} ms" in table
        assert f"{len(calls)} call" in html and "from cache" in html
        traced = re.findall(r'href="(/traces?/[^"]+)"', table)
        assert traced and all(link.startswith("/traces/") for link in traced)
        for prompt in prompts:
            assert f'href="/prompts/{prompt["prompt_id"]}?version={prompt["version"]}"' in html
        steps = [s["name"] for s in record["workflow_execution"]["steps"]]
        assert re.findall(r'<th scope="row">([^<]+)</th>', html) == steps
        assert html.count("<rect ") == len(steps)
        assert " → ".join(record["services_chain"]) in html.replace("&gt;", ">")
        assert f'href="/documents/{spec_id}?version=1"' in html  # the source, linked
        assert record["data_lineage"]["sources"][0]["content_hash"] in html
        assert "completeness" in html
        assert f'href="/runs/{run.id}"' in html
        # started and completed read alike, to the second in UTC (one was sent with Z)
        shown = re.findall(r"<dt>(?:Started|Completed)</dt><dd>([^<]+)</dd>", html)
        assert len(shown) == 2 and all(
            re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", when) for when in shown), shown
        document = await browser.get(f"/documents/{document_id}")
        assert document.status_code == 200 and "<h1" in document.text

    async with docs_as(eco) as docs:  # stored, not generated: no provenance, plainly
        plain = await docs.put("# Notes\n", title="Notes", format="markdown")
    async with signed_in(eco, "user:u1") as browser:
        page = await browser.get(f"/documents/{plain.document_id}/provenance")
        assert page.status_code == 200 and "has no provenance record" in page.text
