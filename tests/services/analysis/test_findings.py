"""Documents that notice their sources changed: a new version of a stored spec is diffed,
kept as a finding, announced, and every document generated from it that a change touches
is marked stale at the doc-store; the same change seen twice is one finding. Real
services over HTTP, on SQLite and on PostgreSQL with Redis; the model is the local fake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from ecosystem import store_spec, token
from llmdocs.core.client import Unprocessable
from llmdocs.core.config import Settings
from llmdocs.core.events import Event, make_event
from llmdocs.devservers import free_port
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.analysis.client import AnalysisClient
from llmdocs.services.analysis.schemas import FindingOut
from llmdocs.services.analysis.service import DOCUMENT_STALE, SPEC_CHANGED
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import ecosystem_with

QUERY = "Create API documentation for user service"
GUARD = 120.0  # a hang guard, not a performance bound


def version(n: int) -> str:
    """The example spec at its n-th version: from the 2nd on, the current-session logout
    is gone (breaking) and the users listing reworded; from the 3rd, a user can be
    suspended."""
    doc: dict[str, Any] = yaml.safe_load(user_service_spec())
    if n >= 2:
        del doc["paths"]["/sessions/current"]
        doc["paths"]["/users"]["get"]["summary"] = "Every user, a page at a time"
    if n >= 3:
        doc["paths"]["/users/{user_id}/suspend"] = {"post": {
            "summary": "Suspend a user", "operationId": "suspendUser",
            "parameters": [{"name": "user_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"204": {"description": "suspended"}}}}
    return str(yaml.safe_dump(doc, sort_keys=False))


async def findings_of(eco: Settings, document_id: str, count: int,
                      ready: Callable[[FindingOut], bool] = lambda _: True,
                      guard: float = GUARD) -> list[FindingOut]:
    """The document's findings, newest first, once there are `count` and the newest is
    `ready` (a regeneration ended)."""
    async with AnalysisClient.for_service(eco, token=token(eco)) as analysis:
        async with asyncio.timeout(guard):
            while len(found := await analysis.findings(document_id, status=None)) < count \
                    or not ready(found[0]):
                await asyncio.sleep(0.1)
    return found


async def document_of_a_spec(eco: Settings) -> tuple[str, str]:
    """A stored spec (version 1) and the document generated from it: their ids."""
    spec_id = await store_spec(eco)
    async with OrchestratorClient.for_service(eco, token=token(eco)) as runs:
        run = await runs.start_run("document-generation",
                                   {"query": QUERY, "spec_document_id": spec_id}, wait=60)
    assert run.status == "completed" and run.result, run.error
    return spec_id, run.result["document_id"]


@pytest.fixture
async def stale_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                    database_url: str, redis_url: str) -> tuple[Settings, Any]:
    """The ecosystem and a served analysis app, not regenerating (the interpreter's
    refresh is another test's): embedded on SQLite, or as distributed on PostgreSQL
    with the events on Redis."""
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    settings.database_url = database_url
    if database_url.startswith("postgresql"):
        settings.events_url = redis_url
    eco = await ecosystem_with(settings, serve, monkeypatch)
    app = create_app("analysis", eco)
    await serve(app, port=eco.port_for("analysis"))
    return eco, app


async def test_a_new_spec_version_makes_the_documents_built_from_it_stale(
        stale_eco: tuple[Settings, Any]) -> None:
    eco, app = stale_eco
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    events = app.state.resources.events
    subscription = events.subscribe("test", collect, types=[SPEC_CHANGED, DOCUMENT_STALE])
    spec_id, doc_id = await document_of_a_spec(eco)

    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        assert not (await docs.get(doc_id)).stale
        await docs.update(spec_id, version(2))
        (finding,) = await findings_of(eco, doc_id, 1)
        marked = await docs.get(doc_id)

    assert (finding.source, finding.base, finding.head) == (f"docstore:{spec_id}", "1", "2")
    assert finding.status == "open" and finding.reason is None and finding.closed_by == {}
    assert finding.diff.summary.model_dump() == {"breaking": 1, "non_breaking": 1}
    (affected,) = finding.documents
    assert (affected.document_id, affected.version) == (doc_id, 1)
    # both changes touch operations the document has sections for; breaking first
    assert [(c.kind, c.operation) for c in affected.changes] == [
        ("operation.removed", "DELETE /sessions/current"), ("summary.changed", "GET /users")]
    assert marked.stale and marked.stale_finding == finding.id and marked.version == 1
    assert marked.stale_reason is not None and f"docstore:{spec_id}" in marked.stale_reason

    async with asyncio.timeout(GUARD):
        while len(seen) < 2:
            await asyncio.sleep(0.05)
    await subscription.stop()
    by_type = {e.type: e for e in seen}
    assert by_type[SPEC_CHANGED].data["finding_id"] == finding.id
    assert by_type[SPEC_CHANGED].data["documents"] == [doc_id]
    stale = by_type[DOCUMENT_STALE].data
    assert (stale["document_id"], stale["finding_id"]) == (doc_id, finding.id)
    assert [c["operation"] for c in stale["changes"]] == ["DELETE /sessions/current",
                                                          "GET /users"]

    # the doc-store's event delivered again, then the next version: still one finding
    # for 1 → 2 (the group's consumer takes the events in order)
    await events.publish(make_event("docstore", "llmdocs.document.updated",
                                    {"id": spec_id, "version": 2}, subject=spec_id))
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, version(3))
        newest, first = await findings_of(eco, doc_id, 2)
        # a new version of the document is written from the sources as they are now
        assert (await docs.update(doc_id, "# rewritten")).stale is False
    assert first.id == finding.id and (newest.base, newest.head) == ("2", "3")
    # the new operation touches every document built from the spec: it lacks a section
    assert [(c.kind, c.operation) for c in newest.documents[0].changes] == [
        ("operation.added", "POST /users/{user_id}/suspend")]
    async with AnalysisClient.for_service(eco, token=token(eco)) as analysis:
        assert [f.id for f in await analysis.findings(status="open")] == [newest.id, first.id]
        # recorded by hand (a refresh that fetched a spec again): the same finding
        again = await analysis.record(f"docstore:{spec_id}", {"document_id": spec_id,
                                                              "version": 1},
                                      {"document_id": spec_id, "version": 2})
        assert again is not None and again.id == finding.id
        # reported by a caller, the change is recorded as any other: the document (at
        # its version 2 now) is stale again
        reported = await analysis.record(f"docstore:{spec_id}", {"document_id": spec_id},
                                         {"content": version(1)})
        assert reported is not None and reported.head != reported.base == "3"
        assert [(d.document_id, d.version) for d in reported.documents] == [(doc_id, 2)]
        with pytest.raises(Unprocessable):  # a source that could reach another route
            await analysis.record(f"docstore:{spec_id}/versions", {"content": version(1)},
                                  {"content": version(2)})
        assert await analysis.record("url:https://example.test/openapi.yaml",
                                     {"content": version(1)}, {"content": version(1)}) is None


async def test_only_the_analysis_service_marks_documents_stale(eco: Settings, serve: Any
                                                              ) -> None:
    spec_id = await store_spec(eco)
    mark = {"reason": "says who?", "finding_id": "f1"}
    async with httpx.AsyncClient(base_url=eco.url_for("docstore")) as http:
        for scopes, status in ((("docs:read", "docs:write"), 403),
                               (("docs:write", "docs:admin"), 200)):
            answer = await http.post(f"/documents/{spec_id}/stale", json=mark, headers={
                "Authorization": f"Bearer {token(eco, *scopes)}"})
            assert answer.status_code == status, answer.text
        stale_version = await http.post(
            f"/documents/{spec_id}/stale", json=mark | {"version": 2},
            headers={"Authorization": f"Bearer {token(eco, 'docs:write', 'docs:admin')}"})
        assert stale_version.status_code == 412


async def test_a_regeneration_that_fails_leaves_the_finding_open_and_says_why(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    # the interpreter that would regenerate cannot be reached from analysis
    cut_off = eco.model_copy(update={"interpreter_port": free_port()})
    await serve(create_app("analysis", cut_off), port=eco.port_for("analysis"))
    spec_id, doc_id = await document_of_a_spec(eco)
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, version(2))
        (finding,) = await findings_of(eco, doc_id, 1, lambda f: f.reason is not None)
        current = await docs.get(doc_id)
    assert finding.status == "open" and finding.closed_by == {}
    assert finding.reason is not None and finding.reason.startswith(
        f"regeneration failed: {doc_id}: ")
    assert current.version == 1 and current.stale  # the current version untouched


async def test_a_stale_document_is_regenerated_and_its_finding_closed(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await ecosystem_with(settings, serve, monkeypatch)
    await serve(create_app("analysis", eco), port=eco.port_for("analysis"))
    spec_id, doc_id = await document_of_a_spec(eco)
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(spec_id, version(2))
        (finding,) = await findings_of(eco, doc_id, 1, lambda f: f.status == "closed")
        current = await docs.get(doc_id)
        first = await docs.get(doc_id, 1)
    assert "### `DELETE /sessions/current`" in (first.content or "")
    assert finding.closed_by == {doc_id: 2} and finding.reason is None
    assert current.version == 2 and not current.stale  # the same id, its next version
    text = current.content or ""
    # the removed operation's section is gone; the changes section says why
    assert "### `DELETE /sessions/current`" not in text
    assert "DELETE /sessions/current was removed" in text
