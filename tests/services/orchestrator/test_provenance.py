"""Provenance that is exactly true: the spec's hash is the SHA-256 of its bytes as
served (what `sha256sum` says), the canonical hash is named as such, each model call's
latency is the provider's with its wait apart, the services chain ends with the
doc-store that stores the document, and a judge is asked only when one is configured
(its verdict is reported, never counted). Real services over HTTP; the model is the
local fake speaking the OpenAI wire format."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.openapi import SpecBounds, parse_spec, spec_hash
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import WorkflowRunOut
from services.orchestrator.fakellm import ecosystem_with

QUERY = "Create API documentation for user service"
# the bytes as served: a comment and CRLF line ends, which parsing does not keep
SERVED = ("# served as written\r\n" + user_service_spec().replace("\n", "\r\n")).encode()


async def eco_judged_by(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                        judge: str | None, **fake: Any) -> Settings:
    if judge:
        monkeypatch.setenv("LLMDOCS_WORKFLOW_JUDGE_MODEL", judge)
    return await ecosystem_with(settings, serve, monkeypatch, **fake)


async def generate(eco: Settings, **request: Any) -> WorkflowRunOut:
    async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
        run = await runs.start_run("document-generation", {"query": QUERY, **request},
                                   wait=60)
    assert run.status == "completed" and run.result, run.error
    return run


def spec_site() -> Starlette:
    async def spec(_: Request) -> Response:
        return Response(SERVED, media_type="application/yaml")

    return Starlette(routes=[Route("/openapi.yaml", spec)])


async def test_provenance_of_a_run_without_a_judge(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await eco_judged_by(settings, serve, monkeypatch, None)
    site = await serve(spec_site())
    by_url = await generate(eco, spec_url=site.url + "/openapi.yaml")
    stored_id = await store_spec(eco)
    stored = await generate(eco, spec_document_id=stored_id)

    assert by_url.result and stored.result
    provenance = by_url.result["provenance"]
    spec = provenance["data_lineage"]["spec"]
    assert spec["sha256"] == hashlib.sha256(SERVED).hexdigest()
    assert spec["sha256_of"] == "the bytes served at its url"
    canonical = spec_hash(parse_spec(SERVED, SpecBounds()))
    assert spec["canonical_sha256"] == canonical != spec["sha256"]
    assert "hash" not in spec
    stored_spec = stored.result["provenance"]["data_lineage"]["spec"]
    assert stored_spec["sha256"] == hashlib.sha256(user_service_spec().encode()).hexdigest()
    assert stored_spec["sha256"] == stored_spec["content_hash"]
    assert "doc-store stores and serves" in stored_spec["sha256_of"]
    # each section names what it was written from: every operation is in a group's
    sections = provenance["data_lineage"]["sections"]
    grouped = {o["operation"] for s in sections if s["kind"] == "group"
               for o in s["operations"]}
    assert len(grouped) == provenance["quality_metrics"]["endpoints"] == 7
    assert stored_spec["canonical_sha256"] == canonical  # the same spec, laid out anew

    # the doc-store that stores the document closes the chain, found by the run's id
    assert provenance["services_chain"][-1] == "doc-store"
    last = provenance["service_calls"][-1]
    assert (last["service"], last["step"]) == ("doc-store", "store")
    assert by_url.id in last["operation"]
    assert "doc-store" not in [c["service"] for c in provenance["service_calls"][:-1]]

    calls = provenance["llm_calls"]
    assert calls and all(c["latency_ms"] > 0 and c["queue_ms"] == 0 and not c["cached"]
                         for c in calls)  # a remote API: no slot to wait for
    assert "review" not in {c["step"] for c in calls}  # no judge: no call
    quality = provenance["quality_metrics"]
    assert quality["judgement"] == {"status": "none", "reason": "no judge configured"}
    assert "llm_score" not in quality
    assert quality["approved"] and quality["completeness"] == quality["truthfulness"] == 1.0
    assert quality["revisions"] == [] and quality["revision_rounds"] == 0


async def test_a_configured_judge_is_reported_not_counted(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await eco_judged_by(settings, serve, monkeypatch, "fake")
    await store_spec(eco)
    run = await generate(eco, service="user service")
    assert run.result
    provenance = run.result["provenance"]
    judged = [c for c in provenance["llm_calls"] if c["step"] == "review"]
    assert [c["model"] for c in judged] == ["fake"]
    quality = provenance["quality_metrics"]
    # the fake judges 9/10; the gate's score stays the coverage
    assert quality["judgement"] == {"status": "judged", "score": 0.9, "approved": True,
                                    "gaps": []}
    assert quality["completeness"] == quality["truthfulness"] == 1.0


async def test_a_judge_that_does_not_answer_is_no_judgement(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await eco_judged_by(settings, serve, monkeypatch, "no-such-model")
    await store_spec(eco)
    run = await generate(eco, service="user service")
    assert run.result
    quality = run.result["provenance"]["quality_metrics"]
    assert quality["judgement"]["status"] == "no judgement"
    assert quality["judgement"]["reason"].startswith("the judge did not answer: ")
    assert "score" not in quality["judgement"] and quality["approved"]


async def test_prose_naming_an_invented_endpoint_is_dropped_and_the_summary_kept(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sentence checker drops the invented endpoint as the model writes it, so the
    review has nothing to revise (the revision round itself: test_review.py)."""
    eco = await eco_judged_by(settings, serve, monkeypatch, None,
                              prose="Call DELETE /admin/reset to start over.")
    await store_spec(eco)
    run = await generate(eco, service="user service")
    assert run.result
    provenance = run.result["provenance"]
    quality = provenance["quality_metrics"]
    assert quality["approved"] and quality["revision_rounds"] == 0
    dropped = [d for section in provenance["prose"] for d in section["dropped"]]
    assert dropped and all("/admin/reset" in d["sentence"] for d in dropped)
    assert all(section["fallback"] for section in provenance["prose"])
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        content = (await docs.get(run.result["document_id"])).content or ""
    assert "/admin/reset" not in content
    # the summary is the spec's, never the model's
    title, summary = content.split("\n\n")[:2]
    assert title.startswith("# ") and summary.startswith("User Service (version 1.4.0)")
