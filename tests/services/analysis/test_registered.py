"""A registered service whose spec changes (the discovery agent registers it again):
analysis fetches the new spec where the registry says it is, diffs it against the one
it saw before, and marks the documents generated from that service stale."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from ecosystem import token
from llmdocs.cli import app as cli_app
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.discovery.client import DiscoveryClient
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.analysis.test_findings import findings_of
from services.orchestrator.fakellm import ecosystem_with


def shop(served: dict[str, Any]) -> Starlette:
    """A service that is not ours, serving whatever spec `served` holds now."""
    async def spec(_: Request) -> Response:
        return Response(json.dumps(served["spec"]), media_type="application/json")

    async def root(_: Request) -> JSONResponse:
        return JSONResponse({"hello": "shop"})

    return Starlette(routes=[Route("/openapi.json", spec), Route("/", root)])


async def test_a_registered_services_new_spec_makes_its_documents_stale(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    eco = await ecosystem_with(settings, serve, monkeypatch)
    for key in ("discovery", "analysis"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    served: dict[str, Any] = {"spec": yaml.safe_load(user_service_spec())}
    site = await serve(shop(served))

    async with DiscoveryClient.for_service(eco, token=token(eco)) as discovery:
        assert (await discovery.discover("shop", site.url, "/openapi.json")).status \
            == "registered"
        async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
            run = await runs.start_run("document-generation", {
                "query": "Create API documentation for the shop service", "service": "shop"},
                wait=60)
        assert run.status == "completed" and run.result, run.error
        doc_id = run.result["document_id"]
        changed = yaml.safe_load(user_service_spec())
        del changed["paths"]["/sessions"]
        served["spec"] = changed
        assert (await discovery.discover("shop", site.url, "/openapi.json")).status \
            == "registered"

    (finding,) = await findings_of(eco, doc_id, 1)
    assert finding.source == "service:shop" and finding.status == "open"
    assert [(c.kind, c.operation) for c in finding.documents[0].changes] == [
        ("operation.removed", "POST /sessions")]
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        assert (await docs.get(doc_id)).stale_finding == finding.id

    # `llmdocs findings`: the open ones, newest first, as JSON and as a table
    monkeypatch.setenv("LLMDOCS_ANALYSIS_PORT", str(eco.port_for("analysis")))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(eco.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", eco.signing_key)
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, cli_app, ["findings", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [f["id"] for f in json.loads(listed.output)] == [finding.id]
    table = await asyncio.to_thread(runner.invoke, cli_app, ["findings"],
                                    env={"COLUMNS": "300"})
    assert table.exit_code == 0 and "service:shop" in table.output and doc_id in table.output
