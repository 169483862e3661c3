"""The main job end to end over real HTTP, with the real local model: a request to the
interpreter becomes API documentation of a stored OpenAPI spec, in every format, with
its provenance; the document lists every endpoint and invents none."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import zipfile
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import defects
from ecosystem import store_spec, token
from llmdocs.claims import CHANGES
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.examples import user_service_spec
from llmdocs.openapi import analyse, markdown, parse_spec, spec_hash
from llmdocs.services import create_app
from llmdocs.services.analysis.service import DOCUMENT_STALE
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.refresh import texts_of
from services.analysis.test_findings import findings_of
from services.orchestrator.test_refresh import changed_spec, written
from waiting import eventually

QUERY = "Create API documentation for user service"
LIVING_GUARD = 900.0  # a hang guard for two runs of the real model, not a bound


def checkpoints_of(settings: Settings, run_id: str) -> int:
    """The run's LangGraph checkpoints in the embedded checkpointer's file."""
    path = Path(settings.database_url.split("///", 1)[-1]).with_suffix(".checkpoints.db")
    with closing(sqlite3.connect(path)) as conn:
        found: int = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?",
                                  (run_id,)).fetchone()[0]
    return found
SPEC = parse_spec(user_service_spec().encode(), DiscoverySettings())
OPERATIONS = analyse("x", SPEC, DiscoverySettings()).operations


# few tokens per model call keep the CPU model quick; the structure is unchanged
SHORT_PROSE = {"LLMDOCS_WORKFLOW_PROSE_TOKENS": "16", "LLMDOCS_WORKFLOW_REVIEW_TOKENS": "16",
               "LLMDOCS_INTERPRETER_MODEL_TOKENS": "24"}


@pytest.fixture(autouse=True)
def _short_prose(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SHORT_PROSE.items():
        monkeypatch.setenv(name, value)


def client(settings: Settings, *scopes: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.url_for("interpreter"), timeout=600,
                             headers={"Authorization": f"Bearer {token(settings, *scopes)}"})


async def events_of(settings: Settings) -> list[Any]:
    database = Database(settings.database_url)
    try:
        return [e for _, e in await create_event_bus(settings, database).replay(limit=2000)]
    finally:
        await database.dispose()


def assert_generated_once(events: list[Any], run_id: str) -> None:
    """A completed run's events, each service's in its own order (they interleave)."""
    mine = [e.type for e in events if (e.data or {}).get("run_id") == run_id]
    assert [t for t in mine if not t.startswith("llmdocs.execution.")] == [
        "llmdocs.workflow.started", "llmdocs.document.generated",
        "llmdocs.workflow.completed"]
    assert [t for t in mine if t.startswith("llmdocs.execution.")] == [
        "llmdocs.execution.accepted", "llmdocs.execution.completed"]


def test_a_mention_of_an_endpoint_is_checked_against_the_spec_paths() -> None:
    """As the spec writes it, or with its parameters filled in; anything else is invented."""
    prose = ("Call GET /users/{user_id}. Or GET /users/42: the same. "
             "DELETE /users/42/avatar and POST /users/42 are not in the spec.")
    found = apidoc.check(prose, OPERATIONS)
    assert found.invented == ["DELETE /users/42/avatar", "POST /users/42"]


async def test_api_documentation_with_provenance(eco: Settings) -> None:
    spec_id = await store_spec(eco)
    async with client(eco) as http:
        answer = await http.post("/execute-query", json={
            "query": QUERY, "format": "markdown", "user_id": "u1"})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "completed" and result["format"] == "markdown"
        assert result["download_url"].endswith(f"/documents/{result['document_id']}/download")
        downloaded = await http.get(f"/documents/{result['document_id']}/download")
        provenance = (await http.get(f"/documents/{result['document_id']}/provenance")).json()

    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        doc = await docs.get(result["document_id"])
        stored_spec = await docs.get(spec_id)
        relations = await docs.relations(result["document_id"])
    # the query is kept in the provenance alone, where a key ring seals it
    assert doc.metadata["run_id"] == result["run_id"] and "query" not in doc.metadata
    markdown = doc.content or ""
    coverage = apidoc.check(markdown, OPERATIONS)
    assert coverage.missing == [] and coverage.invented == []  # every endpoint, none invented
    for op in OPERATIONS:
        assert f"`{op.method.upper()} {op.path}`" in markdown
    assert downloaded.status_code == 200 and downloaded.content == markdown.encode()
    assert result["filename"] in downloaded.headers["content-disposition"]
    assert [(r.type, r.target_id) for r in relations.outgoing] == [("derived_from", spec_id)]

    run = provenance["workflow_execution"]
    assert run["execution_id"] == result["run_id"] and run["workflow"] == "document-generation"
    # every step as it ran, the last two (format, store) too: from the run's record
    names = [s["name"] for s in run["steps"]]
    assert names[0] == "analyze" and names[-2:] == ["format", "store"], names
    assert {"choose_template", "gather_context", "outline", "write", "review"} <= set(names)
    assert all(s["status"] == "completed" and s["duration_ms"] >= 0 for s in run["steps"])
    assert run["steps_complete"] and run["status"] == "completed"
    assert result["provenance"]["workflow_execution"] == run  # the answer's own, the same
    # the run's end, after the store step began (the stored record's is the format's)
    assert datetime.fromisoformat(run["completed_at"]) > datetime.fromisoformat(
        run["steps"][-1]["started_at"])
    assert provenance["services_chain"][:2] == ["interpreter", "orchestrator"]
    assert {"doc-store", "prompt-store", "llm-gateway"} <= set(provenance["services_chain"])
    assert provenance["user_context"]["user_id"] == "u1"
    assert provenance["user_context"]["query"] == QUERY
    assert provenance["user_context"]["intent"] == "generate_document"
    assert provenance["user_context"]["entities"]["service"] == "user"
    prompts = {p["name"]: p for p in provenance["prompts_used"]}
    assert {"api-overview", "api-group-intro"} <= set(prompts)
    assert "review" not in prompts  # no judge is configured: none is asked
    assert all(p["version"] >= 1 and len(p["rendered_hash"]) == 64 for p in prompts.values())
    calls = provenance["llm_calls"]
    assert len(calls) == len(provenance["prompts_used"])
    assert {(c["provider"], c["model"]) for c in calls} == {("local", "smollm2")}
    assert all(c["tokens"]["completion"] >= 1 and c["routing_reason"] for c in calls)
    # the model's own time; the write step's calls wait for the one local model in turn
    assert all(c["latency_ms"] > 0 or c["cached"] for c in calls)
    assert any(c["queue_ms"] > 0 for c in calls if c["step"] == "write")
    lineage = provenance["data_lineage"]
    assert lineage["spec"]["canonical_sha256"] == spec_hash(SPEC)
    assert lineage["spec"]["sha256"] == stored_spec.content_hash == hashlib.sha256(
        user_service_spec().encode()).hexdigest()
    assert lineage["sources"] == [{
        "document_id": spec_id, "version": 1, "content_hash": stored_spec.content_hash,
        "title": "User Service", "role": "openapi_spec"}]
    # the real model's prose, read by a check that shares no code with the filter
    assert defects.check(markdown, SPEC) == []
    assert {p["section"] for p in provenance["prose"]} >= {"Overview", "Getting started"}
    quality = provenance["quality_metrics"]
    assert quality["completeness"] == quality["truthfulness"] == 1.0 and quality["approved"]
    assert quality["invented"] == [] and quality["unsupported"] == []
    assert quality["judgement"] == {"status": "none", "reason": "no judge configured"}
    assert quality["endpoints"] == len(OPERATIONS) == 7

    assert_generated_once(await events_of(eco), result["run_id"])

    async def checkpoints_gone() -> bool:  # a completed run never resumes
        return checkpoints_of(eco, result["run_id"]) == 0

    await eventually(checkpoints_gone, attempts=1000)


async def test_every_format_and_async(eco: Settings) -> None:
    await store_spec(eco)
    async with client(eco) as http:
        for fmt in ("json", "txt", "csv", "pdf", "zip"):
            answer = await http.post("/execute-query", json={
                "query": QUERY, "output_format": fmt, "user_id": "u1", "async": True})
            assert answer.status_code == 202, answer.text
            execution_id = answer.json()["execution_id"]
            done = (await http.get(f"/executions/{execution_id}", params={"wait": 60})).json()
            while done["status"] not in ("completed", "failed"):
                done = (await http.get(f"/executions/{execution_id}",
                                       params={"wait": 60})).json()
            assert done["status"] == "completed" and done["format"] == fmt, done
            data = (await http.get(f"/documents/{done['document_id']}/download")).content
            if fmt == "json":
                body = json.loads(data)
                kinds = [row[0] for row in body["table_rows"]]
                assert kinds.count("operation") == 7 and "GET /users" in body["markdown"]
                assert {"parameter", "request field", "response", "response field"} <= set(
                    kinds)  # a row per parameter and body field too
            elif fmt == "txt":
                assert "GET /users/{user_id}" in data.decode()
            elif fmt == "csv":
                rows = list(csv.reader(io.StringIO(data.decode())))
                assert rows[0] == markdown.TABLE_COLUMNS
                assert {(r[1], r[2]) for r in rows[1:] if r[0] == "operation"} == {
                    (op.method.upper(), op.path) for op in OPERATIONS}
                assert ["parameter", "GET", "/users", "limit", "query", "integer", "no",
                        "default: 20; 1 ≤ value ≤ 100", "Page size (1-100)."] in rows
            elif fmt == "pdf":
                assert data.startswith(b"%PDF")
            else:
                archive = zipfile.ZipFile(io.BytesIO(data))
                assert {"document.md", "document.pdf", "provenance.json"} <= set(
                    archive.namelist())
                # taken inside the file, before the file is stored: it says so
                inside = json.loads(archive.read("provenance.json"))["workflow_execution"]
                assert inside["execution_id"] == done["run_id"]
                assert inside["steps_complete"] is False and "completed_at" not in inside
                steps = [s["name"] for s in inside["steps"]]
                assert steps[0] == "analyze" and {"format", "store"}.isdisjoint(steps)
        # the stream of an execution that has finished replays its steps and its end
        async with http.stream("GET", f"/executions/{execution_id}/events") as stream:
            kinds = [line.split(":", 1)[1].strip() async for line in stream.aiter_lines()
                     if line.startswith("event:")]
        assert kinds[-1] == "completed" and kinds.count("step") >= 8


async def test_interpret_sessions_and_bad_input(eco: Settings) -> None:
    await store_spec(eco)
    async with client(eco) as http:
        plan = (await http.post("/interpret", json={"query": QUERY})).json()
        assert plan["intent"] == "generate_document" and plan["workflow"] == (
            "document-generation")
        assert plan["entities"]["service"] == "user" and plan["missing"] == []
        summary = (await http.post("/interpret", json={
            "query": "Summarize the deployment notes"})).json()
        assert summary["intent"] == "summarize"

        vague = await http.post("/execute-query", json={"query": "hello there"})
        assert vague.status_code == 422 and "cannot be mapped" in vague.json()["detail"]
        assert "understood" in vague.json()["errors"][0]  # what it did understand
        no_api = await http.post("/execute-query", json={"query": "Create API documentation"})
        assert no_api.status_code == 422 and "which API" in no_api.json()["detail"]
        for bad in ({"query": "   "}, {"query": QUERY, "format": "docx"},
                    {"query": "x" * 5000}):
            assert (await http.post("/execute-query", json=bad)).status_code == 422
        metadata = await http.post("/execute-query", json={
            "query": "Create API documentation",
            "spec_url": "http://169.254.169.254/latest/meta-data/"})
        assert metadata.status_code == 422 and "blocked network" in metadata.json()["detail"]
        async with OrchestratorClient.for_service(eco, token=token(eco)) as orchestrator:
            failed = (await orchestrator.runs(status="failed")).items
        assert failed and all(checkpoints_of(eco, run.id) for run in failed)  # resumable
        unknown = await http.post("/execute-query", json={
            "query": "Create API documentation for the billing service"})
        assert unknown.status_code == 422 and "billing" in unknown.json()["detail"]
        missing = await http.get("/documents/0190aaaa-0000-7000-8000-000000000000/provenance")
        assert missing.status_code == 404
        # a run whose record is gone: the steps stored with the document, marked so
        stored_steps = [{"name": "analyze", "status": "completed",
                         "started_at": "2026-01-01T00:00:00Z", "duration_ms": 1.0}]
        async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
            orphan = await docs.put("# Old", title="Old", format="markdown", provenance={
                "workflow_execution": {"execution_id": "0190aaaa-0000-7000-8000-00000000beef",
                                       "steps": stored_steps}})
        kept = (await http.get(f"/documents/{orphan.document_id}/provenance")).json()
        assert kept["workflow_execution"] == {
            "execution_id": "0190aaaa-0000-7000-8000-00000000beef", "steps": stored_steps,
            "steps_complete": False}

        first = await http.post("/execute-query", json={
            "query": QUERY, "session_id": "s1", "user_id": "u1"})
        assert first.status_code == 200
        again = await http.post("/execute-query", json={
            "query": "now as PDF", "session_id": "s1", "user_id": "u1"})
        assert again.status_code == 200, again.text
        assert again.json()["format"] == "pdf" and again.json()["filename"].endswith(".pdf")
        assert again.json()["document_id"] != first.json()["document_id"]
        added = await http.post("/execute-query", json={
            "query": "add the error codes as markdown", "session_id": "s1", "user_id": "u1"})
        assert added.status_code == 200, added.text
        provenance = (await http.get(
            f"/documents/{added.json()['document_id']}/provenance")).json()
        before = (await http.get(
            f"/documents/{first.json()['document_id']}/provenance")).json()

    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        plain = (await docs.get(first.json()["document_id"])).content or ""
        markdown = (await docs.get(added.json()["document_id"])).content or ""
    assert "## Error codes" not in plain  # only when asked for
    section = markdown.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip().strip("`") for c in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]
    expected = [[f"{op.method.upper()} {op.path}", code, answer["description"]]
                for op in OPERATIONS for code, answer in op.responses.items()
                if code[0] in "45"]
    assert len(expected) >= 5 and rows == expected  # every error response of the spec
    assert apidoc.check(markdown, OPERATIONS).complete
    context = provenance["user_context"]
    assert context["query"] == QUERY and context["instructions"] == ["error codes"]
    assert context["follow_up"] == {
        "query": "add the error codes as markdown",
        "previous_execution_id": again.json()["execution_id"],
        "previous_run_id": again.json()["run_id"],
        "previous_document_id": again.json()["document_id"]}
    assert "follow_up" not in before["user_context"]

    def writing(record: dict[str, Any]) -> int:  # the error codes are the spec's alone
        return sum(c["step"] == "write" for c in record["llm_calls"])
    assert writing(provenance) == writing(before) > 0

    async with client(eco, "queries:read") as reader:
        assert (await reader.post("/execute-query", json={"query": QUERY})).status_code == 403
    async with httpx.AsyncClient(base_url=eco.url_for("interpreter")) as anonymous:
        assert (await anonymous.post("/interpret", json={"query": QUERY})).status_code == 401


async def assert_kept_true(settings: Settings) -> None:
    """Living documentation end to end: a document generated from a stored spec; a new
    version of the spec (a summary changed, an operation added, one removed) makes
    analysis mark it stale and regenerate it as version 2, with model calls for the
    changed sections only; checked against the new spec, version 2 is wholly true and
    complete. Shared by embedded and distributed mode (analysis must be running); the
    spec is a document of its own, so only this test's document is made stale."""
    spec_id = await store_spec(settings, dedupe=False)
    async with client(settings) as http:
        answer = await http.post("/execute-query", json={
            "query": QUERY, "spec_document_id": spec_id, "format": "markdown",
            "user_id": "u1"})
        assert answer.status_code == 200, answer.text
    doc_id = answer.json()["document_id"]
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        v1 = await docs.get(doc_id)
        await docs.update(spec_id, changed_spec())
        (finding,) = await findings_of(settings, doc_id, 1, lambda f: f.status != "open"
                                       or f.reason is not None, guard=LIVING_GUARD)
        v2 = await docs.get(doc_id)
    assert finding.reason is None and finding.closed_by == {doc_id: 2}, finding.reason
    assert [(d.document_id, d.version) for d in finding.documents] == [(doc_id, 1)]
    stale = [e.data for e in await events_of(settings) if e.type == DOCUMENT_STALE
             and e.data["document_id"] == doc_id]
    assert [s["finding_id"] for s in stale] == [finding.id]  # it was marked stale
    assert v2.version == 2 and not v2.stale and v2.stale_finding is None  # mark cleared

    # model calls for the changed sections only: the rest kept byte for byte
    before, after = (texts_of(v.content or "", "markdown") for v in (v1, v2))
    assert sorted(written(v2.provenance or {})) == ["Health", "Overview", "Sessions"]
    assert len(written(v1.provenance or {})) > 3  # v2's three calls are fewer
    reused = (v2.provenance or {})["data_lineage"]["refresh"]["reused"]
    assert {"Getting started", "Users", "Schemas"} <= set(reused)
    for title in reused:
        assert after[title] == before[title], title
    shown = "\n".join(text for t, text in after.items() if not t.startswith(CHANGES))
    assert "/sessions/current" not in shown and "`GET /health`" in after["Health"]

    async with httpx.AsyncClient(base_url=settings.url_for("analysis"), timeout=60,
                                 headers={"Authorization": f"Bearer {token(settings)}"}
                                 ) as analysis:
        checked = await analysis.post("/check", json={
            "document": {"document_id": doc_id, "version": 2},
            "spec": {"document_id": spec_id, "version": 2}})
    assert checked.status_code == 200, checked.text
    found = checked.json()
    assert found["scores"]["truthfulness"] == 1.0 and found["missing"] == [], found


async def test_a_changed_spec_keeps_its_document_true(eco: Settings, serve: Any) -> None:
    await serve(create_app("analysis", eco), port=eco.port_for("analysis"))
    await assert_kept_true(eco)
