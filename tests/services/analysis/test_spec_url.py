"""A refresh that finds new content at a document's `spec_url`: analysis, told by the
run's completion, diffs what the URL serves against what it served before, and marks
stale every other document generated from that URL, not the refreshed one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecosystem import token
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.analysis.test_findings import GUARD, QUERY, findings_of, version
from services.orchestrator.fakellm import ecosystem_with


def site(served: dict[str, Any]) -> Starlette:
    """A spec at a URL: whatever `served` holds now, its fetches counted."""
    async def spec(_: Request) -> Response:
        served["fetches"] += 1
        return Response(json.dumps(served["spec"]), media_type="application/json")

    return Starlette(routes=[Route("/openapi.json", spec)])


async def generated(eco: Settings, request: dict[str, Any]) -> str:
    async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
        done = await runs.start_run("document-generation", request, wait=60)
    assert done.status == "completed" and done.result, done.error
    return str(done.result["document_id"])


async def test_a_refresh_seeing_a_new_spec_url_content_reports_it(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    eco = await ecosystem_with(settings, serve, monkeypatch)
    await serve(create_app("analysis", eco), port=eco.port_for("analysis"))
    served: dict[str, Any] = {"spec": yaml.safe_load(user_service_spec()), "fetches": 0}
    url = (await serve(site(served))).url + "/openapi.json"
    refreshed = await generated(eco, {"query": QUERY, "spec_url": url})
    other = await generated(eco, {"query": f"{QUERY}, once more", "spec_url": url})
    async with asyncio.timeout(GUARD):  # both runs, and analysis's first look; no more
        while served["fetches"] < 3:
            await asyncio.sleep(0.05)

    served["spec"] = yaml.safe_load(version(2))
    assert await generated(eco, {"query": "Refresh it",
                                 "refresh_document_id": refreshed}) == refreshed

    (finding,) = await findings_of(eco, other, 1)
    assert finding.source == f"url:{url}" and finding.status == "open"
    assert sorted((c.kind, c.operation, c.breaking) for c in finding.diff.changes) == [
        ("operation.removed", "DELETE /sessions/current", True),
        ("summary.changed", "GET /users", False)]
    assert [d.document_id for d in finding.documents] == [other]
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        assert (await docs.get(other)).stale_finding == finding.id
        now = await docs.get(refreshed)  # written from the new content: not stale
        assert now.version == 2 and not now.stale
    assert served["fetches"] == 5  # the refresh's, and analysis's look at the new content
