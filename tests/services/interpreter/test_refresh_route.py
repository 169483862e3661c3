"""`POST /documents/{id}/refresh` and `llmdocs docs refresh ID`: a generated document
written again as its next version, answered as /execute-query is (200, or 202 with the
execution's Location; once per Idempotency-Key), for a caller who may read and write
documents; refusals before any run. Real services over HTTP; the model is the fake."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ecosystem import store_spec, token
from llmdocs.cli import app
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from services.orchestrator.fakellm import ecosystem_with
from services.orchestrator.test_refresh import QUERY, changed_spec

EVERYTHING = ("queries:read", "queries:write", "docs:read", "docs:write")


def client(eco: Settings, *scopes: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=eco.url_for("interpreter"), timeout=120, headers={
        "Authorization": f"Bearer {token(eco, *scopes)}"})


async def version_of(eco: Settings, document_id: str) -> int:
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        return (await docs.get(document_id)).version


async def test_refresh_is_answered_as_execute_query(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    spec_id = await store_spec(eco)
    async with client(eco, *EVERYTHING) as http:
        made = await http.post("/execute-query", json={"query": QUERY,
                                                       "spec_document_id": spec_id})
        assert made.status_code == 200, made.text
        document_id = made.json()["document_id"]
        async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
            await docs.update(spec_id, changed_spec())

        key = {"Idempotency-Key": "refresh-1"}
        started = await http.post(f"/documents/{document_id}/refresh", json={},
                                  params={"wait": 0}, headers=key)
        assert started.status_code == 202, started.text
        execution = started.json()
        assert started.headers["Location"] == f"/executions/{execution['execution_id']}"
        assert execution["run_id"] and execution["intent"] == "refresh_document"
        replayed = await http.post(f"/documents/{document_id}/refresh", json={},
                                   params={"wait": 0}, headers=key)
        assert (replayed.status_code, replayed.json()) == (202, execution)  # no second run
        done = (await http.get(f"/executions/{execution['execution_id']}",
                               params={"wait": 60})).json()
        assert done["status"] == "completed" and done["document_id"] == document_id
        record = done["provenance"]["data_lineage"]["refresh"]
        assert record["previous_version"] == 1 and "Users" in record["reused"]

        waited = await http.post(f"/documents/{document_id}/refresh")  # no body: {}
        assert waited.status_code == 200, waited.text
        assert waited.json()["provenance"]["data_lineage"]["refresh"]["previous_version"] == 2
    assert await version_of(eco, document_id) == 3

    async with client(eco, "queries:write", "docs:read") as reader:
        refused = await reader.post(f"/documents/{document_id}/refresh", json={})
    assert refused.status_code == 403 and "docs:write" in refused.json()["detail"]
    async with client(eco, *EVERYTHING) as http:
        missing = await http.post("/documents/no-such-document/refresh", json={})
        not_generated = await http.post(f"/documents/{spec_id}/refresh", json={})
        odd = await http.post(f"/documents/{document_id}/refresh", json={"async": "yes"})
        async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
            await docs.update(spec_id, "openapi: [this is not a spec")
        failed = await http.post(f"/documents/{document_id}/refresh", json={})
    assert missing.status_code == 404, missing.text
    assert not_generated.status_code == 422, not_generated.text
    assert odd.status_code == 422, odd.text
    assert failed.status_code == 422 and "not a usable OpenAPI spec" in failed.json()["detail"]
    assert await version_of(eco, document_id) == 3  # the failed refresh stored nothing


async def test_docs_refresh_command(settings: Settings, serve: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    spec_id = await store_spec(eco)
    async with client(eco, *EVERYTHING) as http:
        made = await http.post("/execute-query", json={"query": QUERY,
                                                       "spec_document_id": spec_id})
    document_id = made.json()["document_id"]
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, changed_spec())
    monkeypatch.setenv("LLMDOCS_INTERPRETER_URL", eco.url_for("interpreter"))
    monkeypatch.setenv("LLMDOCS_TOKEN", token(eco, *EVERYTHING))
    monkeypatch.setenv("COLUMNS", "200")
    result = await asyncio.to_thread(CliRunner().invoke, app, ["docs", "refresh", document_id])
    assert result.exit_code == 0, result.output
    assert f"Document {document_id} is at version 2" in result.output
    assert "breaking: DELETE /sessions/current was removed" in result.output
    assert "regenerated: " in result.output and "Sessions" in result.output

    gone = await asyncio.to_thread(CliRunner().invoke, app, ["docs", "refresh", "no-such"])
    assert gone.exit_code == 1 and "Traceback" not in gone.output
