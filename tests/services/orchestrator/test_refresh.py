"""A generated document refreshed as its next version when its spec changes: sections
whose spec fragments did not change are kept word for word with no model call, the
changed and new ones are written, a removed operation's documentation is gone, and a
section lists the changes, breaking first. A refresh that fails stores nothing. Real
services over HTTP; the model is the local fake speaking the OpenAI wire format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecosystem import store_spec, token
from llmdocs.claims import CHANGES, check_document
from llmdocs.core.client import Forbidden
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.formats import GeneratedDocument, render
from llmdocs.openapi import SpecBounds, parse_spec
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator import refresh
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.refresh import texts_of
from llmdocs.services.orchestrator.schemas import WorkflowRunOut
from llmdocs.services.orchestrator.workflow_state import WorkflowError
from services.orchestrator.fakellm import ecosystem_with

QUERY = "Create API documentation for user service"
HEALTH = {"get": {"tags": ["health"], "operationId": "health", "summary": "Check health",
                  "responses": {"200": {"description": "The service is up."}}}}


def changed_spec() -> str:
    """The example spec with one summary changed, one operation added (in a new group)
    and one removed: the Users group is untouched."""
    spec = parse_spec(user_service_spec().encode(), SpecBounds())
    spec["paths"]["/sessions"]["post"]["summary"] = "Log in with a password"
    del spec["paths"]["/sessions/current"]
    spec["paths"]["/health"] = HEALTH
    return json.dumps(spec)


async def run(eco: Settings, request: dict[str, Any]) -> WorkflowRunOut:
    async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
        return await runs.start_run("document-generation", request, wait=60)


async def refreshed(eco: Settings, document_id: str) -> WorkflowRunOut:
    done = await run(eco, {"query": "Refresh the document",
                           "refresh_document_id": document_id})
    assert done.status == "completed" and done.result, done.error
    return done


def prose_sections(done: WorkflowRunOut) -> list[str]:
    """The sections the run's model wrote for."""
    assert done.result is not None
    return written(done.result["provenance"])


def written(provenance: dict[str, Any]) -> list[str]:
    """The sections a document's model wrote for, each with one call."""
    assert len(provenance["llm_calls"]) == len(provenance["prose"])
    return [p["section"] for p in provenance["prose"]]


async def test_a_changed_spec_rewrites_only_what_changed(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    spec_id = await store_spec(eco)
    first = await run(eco, {"query": QUERY, "spec_document_id": spec_id})
    assert first.status == "completed" and first.result, first.error
    document_id = first.result["document_id"]
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        v1 = await docs.get(document_id)
        await docs.update(spec_id, changed_spec())

        second = await refreshed(eco, document_id)
        v2 = await docs.get(document_id)
    assert second.result is not None
    assert (second.result["document_id"], second.result["version"]) == (document_id, 2)
    assert v2.version == 2 and v2.title == v1.title
    before = texts_of(v1.content or "", "markdown")
    after = texts_of(v2.content or "", "markdown")
    for title in ("Getting started", "Users", "Schemas"):
        assert after[title] == before[title]  # kept word for word
    # no call for the rest; the overview's prompt lists the groups: a new one asks again
    assert sorted(prose_sections(second)) == ["Health", "Overview", "Sessions"]
    assert "Log in with a password" in after["Sessions"] != before["Sessions"]
    assert "`GET /health`" in after["Health"]
    shown = {t: text for t, text in after.items() if not t.startswith(CHANGES)}
    assert not any("/sessions/current" in text for text in shown.values())
    changes = after[f"{CHANGES} 1"].splitlines()
    assert changes[0] == "1 breaking change and 2 others."
    assert changes[2] == "- **Breaking:** DELETE /sessions/current was removed."
    assert changes[3:] == ["- POST /sessions: The operation's summary changed.",
                           "- GET /health was added."]
    # the document check reads the changes as history, but not the same words elsewhere
    spec = parse_spec(changed_spec().encode(), SpecBounds())
    found = check_document(v2.content or "", spec)
    assert (found.truthfulness, found.missing) == (1.0, []), found.unsupported
    moved = check_document((v2.content or "").replace(f"## {CHANGES} 1", "## Notes"), spec)
    assert ("operation", "DELETE /sessions/current") in {
        (u.kind, u.claim) for u in moved.unsupported}
    provenance = second.result["provenance"]
    quality = provenance["quality_metrics"]
    assert quality["completeness"] == quality["truthfulness"] == 1.0, quality
    lineage = provenance["data_lineage"]
    assert {s["title"]: s["reused"] for s in lineage["sections"]
            if s["kind"] in ("overview", "group")} == {
        "Overview": False, "Users": True, "Sessions": False, "Health": False}
    record = lineage["refresh"]
    assert record["previous_version"] == 1 and record["document_id"] == document_id
    assert (record["base_spec"]["document_version"],
            record["head_spec"]["document_version"]) == (1, 2)
    assert record["summary"] == {"breaking": 1, "non_breaking": 2}

    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        third = await refreshed(eco, document_id)  # nothing changed since: all reused
        v3 = await docs.get(document_id)
    assert third.result is not None and third.result["version"] == v3.version == 3
    assert prose_sections(third) == []
    assert all(s["reused"] for s in third.result["provenance"]["data_lineage"]["sections"])
    assert texts_of(v3.content or "", "markdown")[f"{CHANGES} 2"] == (
        "Nothing the document shows changed in the spec.")


async def test_a_refresh_that_fails_stores_nothing(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    """On SQLite and on PostgreSQL: the store's If-Match and key hold on both."""
    eco = await ecosystem_with(settings.model_copy(update={"database_url": database_url}),
                               serve, monkeypatch)
    spec_id = await store_spec(eco)
    first = await run(eco, {"query": QUERY, "spec_document_id": spec_id})
    assert first.result is not None
    document_id = first.result["document_id"]
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, "openapi: [this is not a spec")
        failed = await run(eco, {"query": "Refresh", "refresh_document_id": document_id})
        current = await docs.get(document_id)
    assert failed.status == "failed" and failed.failure == "request"
    assert failed.error and f"document {spec_id} is not a usable OpenAPI spec" in failed.error
    assert current.version == 1

    async with OrchestratorClient.for_service(
            eco, token=token(eco, "workflows:write", "docs:read")) as runs:
        with pytest.raises(Forbidden, match="docs:write"):  # refused before any run
            await runs.start_run("document-generation", {
                "query": "Refresh", "refresh_document_id": document_id})
    not_generated = await run(eco, {"query": "Refresh", "refresh_document_id": spec_id})
    assert not_generated.status == "failed" and not_generated.error
    assert "only such a document can be refreshed" in not_generated.error

    # a resumed run's second try gets the first's version; a version stored while a refresh
    # ran (here by hand) refuses the refresh's own
    rendered = render(GeneratedDocument(title="Refreshed"), "markdown")
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        tries = [await refresh.store(docs, {"document_id": document_id, "version": 1},
                                     "run-1", rendered, title="Refreshed") for _ in range(2)]
        assert [t.version for t in tries] == [2, 2]
        await docs.update(document_id, "Edited by hand.")
        with pytest.raises(WorkflowError, match="has a version newer than 2"):
            await refresh.store(docs, {"document_id": document_id, "version": 2}, "run-2",
                                rendered, title="Refreshed")
        assert (await docs.get(document_id)).content == "Edited by hand."
        assert len((await docs.versions(document_id)).items) == 3


async def test_other_formats_are_refreshed_in_their_format(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON document keeps its sections to reuse; a PDF keeps no Markdown, so all its
    sections are written anew, and it is stored again as a PDF."""
    eco = await ecosystem_with(settings, serve, monkeypatch)
    spec_id = await store_spec(eco)
    made = {fmt: await run(eco, {"query": QUERY, "spec_document_id": spec_id,
                                 "format": fmt}) for fmt in ("json", "pdf")}
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, changed_spec())
        again = {fmt: await refreshed(eco, (done.result or {})["document_id"])
                 for fmt, done in made.items()}
        pdf, media_type, _ = await docs.download((again["pdf"].result or {})["document_id"])
        stored = await docs.get((again["json"].result or {})["document_id"])
    assert sorted(prose_sections(again["json"])) == ["Health", "Overview", "Sessions"]
    sections = texts_of(stored.content or "", "json")
    assert stored.version == 2 and f"{CHANGES} 1" in sections and "Health" in sections
    assert sorted(prose_sections(again["pdf"])) == [
        "Getting started", "Health", "Overview", "Sessions", "Users"]
    assert (again["pdf"].result or {})["version"] == 2
    assert media_type == "application/pdf" and pdf.startswith(b"%PDF")


async def test_a_spec_at_a_url_is_fetched_again_and_compared_by_its_hashes(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier version of a spec at a URL is not kept: its changes are said from the
    fragment hashes each version of the document recorded."""
    served = {"spec": user_service_spec()}

    async def spec(_: Request) -> Response:
        return Response(served["spec"], media_type="application/yaml")

    eco = await ecosystem_with(settings, serve, monkeypatch)
    site = await serve(Starlette(routes=[Route("/openapi.yaml", spec)]))
    first = await run(eco, {"query": QUERY, "spec_url": site.url + "/openapi.yaml"})
    assert first.result is not None, first.error
    served["spec"] = changed_spec()
    again = await refreshed(eco, first.result["document_id"])
    assert again.result is not None and again.result["version"] == 2
    assert sorted(prose_sections(again)) == ["Health", "Overview", "Sessions"]
    record = again.result["provenance"]["data_lineage"]["refresh"]
    assert record["base_spec"]["url"] == record["head_spec"]["url"] == site.url + "/openapi.yaml"
    assert record["base_spec"]["sha256"] != record["head_spec"]["sha256"]
    said = [(c["breaking"], c["operation"], c["message"]) for c in record["changes"]]
    assert said[0] == (True, "DELETE /sessions/current", "DELETE /sessions/current was removed")
    assert {(False, "GET /health", "GET /health was added"),
            (False, "POST /sessions", "POST /sessions changed (see its section)")} <= set(said)
