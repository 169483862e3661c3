"""Hostile input to the interpreter that got past its request schema: a provenance
anyone stored in the doc-store that the interpreter's answer trusted (a 500 when its
workflow part was not an object or its run id no id, and its own keys passed for the
document's id, version and hash), and entities the interpreter found in a query that
the run or the search then refused, a 422 naming the other service's field (`input.*`,
`query.q`) instead of the query the caller sent. Real services over HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from badinput import assert_refused
from ecosystem import token
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services.docstore.client import DocStoreClient
from services.interpreter import test_interpreter_input
from services.interpreter.test_interpreter_input import PEOPLE, QUERY, as_user, run_ids

ieco = test_interpreter_input.ieco  # the ecosystem with the example spec and a fake model

UUIDS = " ".join(f"0190aaaa-0000-7000-8000-{i:012d}" for i in range(21))

# what the doc-store keeps as a document's provenance: any JSON object
PROVENANCE: dict[str, dict[str, Any]] = {
    "workflow part a string": {"workflow_execution": "x"},
    "workflow part a number": {"workflow_execution": 5},
    "workflow part a list": {"workflow_execution": [1]},
    "run id walks up the path": {"workflow_execution": {"execution_id": "../../health"}},
    "run id with a line break": {"workflow_execution": {"execution_id": "a b\r\nc"}},
    "run id too long for a URL": {"workflow_execution": {"execution_id": "a" * 100_000}},
}


@pytest.mark.parametrize("name", PROVENANCE)
async def test_a_stored_provenance_of_any_shape_reads_as_stored(ieco: Settings,
                                                                name: str) -> None:
    stored = PROVENANCE[name]
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        document = await docs.put(f"# {name}", title="Provenance", format="markdown",
                                  provenance=stored)
        path = f"/documents/{document.document_id}/provenance"
        for method in ("GET", "HEAD"):
            answer = await http.request(method, path)
            assert answer.status_code == 200, (method, answer.text)
        shown = (await http.get(path)).json()["workflow_execution"]
        part = stored["workflow_execution"]
        # a run id that is none is not asked of the orchestrator: its steps are unknown
        assert shown == ({**part, "steps_complete": False} if isinstance(part, dict)
                         else part)
        assert (await docs.provenance(document.document_id)).provenance == stored


async def test_a_stored_provenance_cannot_pass_for_the_documents_identity(
        ieco: Settings) -> None:
    forged = {"document_id": "forged", "version": 99, "content_hash": "forged",
              "relations": "forged"}
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        document = await docs.put("# forged", title="Forged", format="markdown",
                                  provenance=forged)
        shown = (await http.get(f"/documents/{document.document_id}/provenance")).json()
        assert (shown["document_id"], shown["version"], shown["content_hash"]) == (
            document.document_id, document.version, document.content_hash)
        assert shown["relations"]["document_id"] == document.document_id
        assert (await docs.provenance(document.document_id)).provenance == forged


async def test_a_stored_provenance_shows_only_the_run_that_made_the_document(
        ieco: Settings) -> None:
    """Naming another document's run does not show that run's steps, status or end."""
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        made = (await http.post("/execute-query", json={"query": QUERY})).json()
        path = f"/documents/{made['document_id']}/provenance"
        ran = (await http.get(path)).json()["workflow_execution"]
        assert ran["steps_complete"] is True and ran["status"] == "completed"
        borrowed = {"execution_id": ran["execution_id"], "steps": []}
        document = await docs.put("# borrowed", title="Borrowed", format="markdown",
                                  provenance={"workflow_execution": borrowed})
        shown = (await http.get(f"/documents/{document.document_id}/provenance")).json()
        assert shown["workflow_execution"] == {**borrowed, "steps_complete": False}



async def test_who_asked_and_in_which_session_shows_only_to_them_and_admins(
        ieco: Settings) -> None:
    """A document's provenance named the user it was made for and their session to any
    reader: through the interpreter, the doc-store and the zip's provenance.json."""
    async with as_user(ieco, "user:alice") as alice, as_user(ieco, "user:bob") as bob, \
            as_user(ieco, "user:boss", *PEOPLE, "*:admin") as admin:
        made = await alice.post("/execute-query", json={"query": QUERY, "format": "zip",
                                                        "session_id": "alice-session"})
        assert made.status_code == 200, made.text
        path = made.json()["provenance_url"]
        whole = (await alice.get(path)).json()
        assert whole["user_context"]["user_id"] == "user:alice"
        assert whole["user_context"]["session_id"] == "alice-session"
        assert (await admin.get(path)).json() == whole
        seen = await bob.get(path)
        assert seen.status_code == 200, seen.text
        context = {k: v for k, v in whole["user_context"].items()
                   if k not in ("user_id", "session_id")}
        assert context["query"] == QUERY
        assert seen.json() == {**whole, "user_context": context}
        document_id = made.json()["document_id"]
        archive = zipfile.ZipFile(io.BytesIO((await bob.get(
            f"/documents/{document_id}/download")).content))
        assert json.loads(archive.read("provenance.json"))["user_context"] == context
    async with DocStoreClient.for_service(
            ieco, token=issue_token(ieco, "user:bob", ["docs:read"])) as docs:
        stored = (await docs.provenance(document_id)).provenance
        assert stored is not None and "user_id" not in stored["user_context"]
        assert "session_id" not in stored["user_context"]


# queries whose entities, search words or length the run or the search refuse
QUERIES = {
    "21 document ids": f"Summarize {UUIDS}",
    "a 100-character service": f"Create API documentation for the {'a' * 150} service",
    "a malformed spec URL": "Create API documentation from http://[::1/spec.yaml",
    "a spec URL past 2000 characters": f"Create API documentation from http://e.com/{'a' * 2500}",
    "search words past 500 characters": f"Summarize the notes about {'word ' * 120}",
    "a search past 500 characters": f"find {'word ' * 120}",
    "a question of two characters": "a?",
}


def assert_names_the_query(answer: httpx.Response) -> None:
    """A 422 problem whose only field is the query: not a field of the run's input or
    the search's parameters, which the caller never sent."""
    assert_refused(answer, "query")
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert [e["field"] for e in answer.json()["errors"]] == ["query"], answer.text


@pytest.mark.parametrize("name", QUERIES)
async def test_what_a_query_names_beyond_a_run_is_a_422_naming_the_query(
        ieco: Settings, name: str) -> None:
    async with as_user(ieco, "user:u1", "*") as http:
        for run_async in (False, True):
            answer = await http.post("/execute-query", json={
                "query": QUERIES[name], "async": run_async, "session_id": "s"})
            assert_names_the_query(answer)
        # the plan that /interpret shows is checked as the run would be: no workflow, and why
        plan = (await http.post("/interpret", json={"query": QUERIES[name]})).json()
        if plan["intent"] not in ("list_documents", "search_documents"):  # no run
            assert (plan["workflow"], plan["workflow_input"]) == (None, None), plan
            assert plan["missing"][0] in answer.json()["detail"]
        assert await run_ids(ieco) == set()  # nothing started
        # nor anything remembered: a follow-up in the session has nothing to follow
        plan = (await http.post("/interpret", json={"query": "now as PDF",
                                                    "session_id": "s"})).json()
        assert "no previous result in this session" in plan["missing"][0]


async def test_a_follow_up_past_what_a_run_takes_is_a_422_naming_the_query(
        ieco: Settings) -> None:
    """Each "add ..." of a session adds to its instructions, which a run takes ten of."""
    async with as_user(ieco, "user:u1", "*") as http:
        first = await http.post("/execute-query", json={"query": QUERY, "session_id": "s"})
        assert first.status_code == 200, first.text
        for part in range(10):
            added = await http.post("/execute-query", json={
                "query": f"add the part {part}", "session_id": "s", "async": True})
            assert added.status_code == 202, added.text
        # the plan of a follow-up names the document of the last run, once it has one
        assert (await http.get(added.headers["location"], params={"wait": 60})
                ).json()["status"] == "completed"
        last = (await http.post("/interpret", json={"query": "now as PDF",
                                                    "session_id": "s"})).json()
        before = await run_ids(ieco)
        answer = await http.post("/execute-query", json={"query": "add the part 10",
                                                         "session_id": "s"})
        assert_names_the_query(answer)
        assert "at most 10 items" in answer.json()["detail"]
        plan = (await http.post("/interpret", json={"query": "add the part 10",
                                                    "session_id": "s"})).json()
        assert plan["workflow"] is None and "at most 10 items" in plan["missing"][0]
        assert await run_ids(ieco) == before
        assert (await http.post("/interpret", json={"query": "now as PDF",
                                                     "session_id": "s"})).json() == last


async def test_documents_are_read_with_the_callers_rights_not_the_interpreters(
        ieco: Settings) -> None:
    """A confused deputy: the interpreter read the doc-store with its own service token,
    so a token without `docs:read` read any document through it (200). It now reads as
    the caller: the doc-store's 403 is the answer, and with `docs:read` it is a 200."""
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:eve", "queries:*") as eve, \
            as_user(ieco, "user:ann", "queries:*", "docs:read") as ann:
        document = await docs.put("# Secret plans", title="Secret", format="markdown",
                                  provenance={"sources": []})
        for path in (f"/documents/{document.document_id}/download",
                     f"/documents/{document.document_id}/provenance"):
            refused, allowed = await eve.get(path), await ann.get(path)
            assert refused.status_code == 403, (path, refused.text)
            assert "docs:read" in refused.json()["detail"]
            assert allowed.status_code == 200, (path, allowed.text)
        listing = await eve.post("/execute-query", json={"query": "list all documents"})
        assert listing.status_code == 403, listing.text
        listed = await ann.post("/execute-query", json={"query": "list all documents"})
        assert listed.status_code == 200, listed.text
        assert document.document_id in {d["document_id"] for d in listed.json()["documents"]}


async def test_a_run_reads_named_documents_only_for_a_caller_who_may_read_them(
        ieco: Settings) -> None:
    """A run reads the documents its input names with the orchestrator's token: a token
    without `docs:read` had any document summarised for it, through the interpreter or
    by starting the run itself. Both are a 403 now, and nothing is started."""
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:eve", "queries:*") as eve:
        document = await docs.put("# Secret plans\nThe launch is in May.", title="Secret",
                                  format="markdown")
        before = await run_ids(ieco)
        asked = await eve.post("/execute-query",
                               json={"query": f"Summarize {document.document_id}"})
        assert asked.status_code == 403, asked.text
        assert "docs:read" in asked.json()["detail"]
        bearer = {"Authorization": f"Bearer {token(ieco, 'workflows:*')}"}
        async with httpx.AsyncClient(base_url=ieco.url_for("orchestrator"),
                                     headers=bearer) as orchestrator:
            for path in ("/workflows/document-generation/runs",
                         "/workflows/document-generation/check"):
                started = await orchestrator.post(path, json={"input": {
                    "query": "Summarize it", "document_ids": [document.document_id]}})
                assert started.status_code == 403, (path, started.text)
        assert await run_ids(ieco) == before
