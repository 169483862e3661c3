"""Spaces across the run services, over real HTTP with the real doc-store keeping the
memberships: Bob's request in space team-b stores its document there; Alice, a member
of team-a only, gets for each of Bob's runs, executions, documents (provenance,
download, refresh, check, diff), findings, events and correlations the 404 (or the
empty listing) a missing one gets (every route by id, from the OpenAPI documents),
and nothing of his document's text anywhere; Bob sees them all. The model is the local fake."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from ecosystem import start_services, two_spaces
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Database, utcnow
from llmdocs.examples import user_service_spec
from llmdocs.services import create_app
from llmdocs.services.analysis.models import Finding, FindingDocument
from services.orchestrator.fakellm import fake_llm, provider_env
from services.orchestrator.test_refresh import changed_spec
from waiting import eventually

QUERY = "Create API documentation for user service"
SECRET = "Zebrafinch"  # in Bob's spec, so in the document made from it
# Alice may act for anyone in the interpreter and the orchestrator: only her spaces
# keep Bob's work from her
ALICE = ("queries:admin", "workflows:admin")
USER_SCOPES = ["queries:read", "queries:write", "docs:read", "docs:write", "workflows:read",
               "workflows:write", "analysis:read", "analysis:write", "logs:read"]


def bobs_spec() -> str:
    return user_service_spec().replace("title: User Service", f"title: {SECRET} Service")


def client(settings: Settings, service: str, subject: str, *scopes: str) -> httpx.AsyncClient:
    bearer = issue_token(settings, subject, USER_SCOPES + list(scopes))
    return httpx.AsyncClient(base_url=settings.url_for(service), timeout=120,
                             headers={"Authorization": f"Bearer {bearer}"})


def clean(answer: httpx.Response, *secrets: str) -> httpx.Response:
    """The answer, checked to hold none of `secrets` (the document's text, its ids)."""
    for secret in (SECRET, *secrets):
        assert secret not in answer.text, (answer.request.url, answer.text)
    return answer


def same_404(answer: httpx.Response, missing: httpx.Response, hidden: str, absent: str
             ) -> None:
    """`answer` (about `hidden`) is the 404 that a missing thing (`absent`) gets."""
    def shape(body: httpx.Response, named: str) -> str:
        return json.dumps({k: v for k, v in body.json().items() if k != "correlation_id"}
                          ).replace(named, "<id>")

    assert answer.status_code == missing.status_code == 404, answer.text
    assert shape(answer, hidden) == shape(missing, absent)


async def every_route_by_id(http: httpx.AsyncClient, ids: dict[str, str],
                           *secrets: str) -> int:
    """Every route of the service whose path names only `ids`' parameters, called with
    the hidden ids and with missing ones: the same 404, and in the answer nothing of
    the hidden things (`secrets`, and the ids the route does not name); how many.
    Routes come from the service's OpenAPI document: a new one is checked unasked."""
    absent = "00000000-0000-0000-0000-000000000000"
    paths = (await http.get("/openapi.json")).json()["paths"]
    checked = 0
    for template, operations in paths.items():
        names = re.findall(r"\{([^}]+)\}", template)
        if not names or not set(names) <= set(ids):
            continue
        hidden_path = re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], template)
        missing_path = re.sub(r"\{[^}]+\}", absent, template)
        others = [ids[k] for k in ids if k not in names]
        for method in operations:
            hidden = clean(await http.request(method.upper(), hidden_path), *secrets,
                           *others)
            same_404(hidden, await http.request(method.upper(), missing_path),
                     ids[names[0]], absent)
            checked += 1
    return checked


@pytest.fixture
async def spaced(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[Settings, str]:
    """The main job's services with analysis and the log-collector; spaces team-a
    (Alice, editor) and team-b (Bob, editor); Bob's spec stored in team-b."""
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    monkeypatch.setenv("LLMDOCS_SPACES_CACHE_SECONDS", "0")
    eco = await start_services(settings, serve)
    for key in ("analysis", "logcollector"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    await two_spaces(eco)
    async with client(eco, "docstore", "user:bob") as bob:
        stored = await bob.post("/documents", json={
            "content": bobs_spec(), "title": f"{SECRET} OpenAPI", "format": "yaml",
            "tags": ["openapi"], "metadata": {"service": "user-service"},
            "space": "team-b"})
        assert stored.status_code == 201, stored.text
    return eco, stored.json()["document_id"]


async def test_another_spaces_work_is_missing_to_a_non_member(
        spaced: tuple[Settings, str]) -> None:
    eco, spec_id = spaced
    async with client(eco, "interpreter", "user:bob") as bob, \
            client(eco, "interpreter", "user:alice", *ALICE) as alice:
        made = await bob.post("/execute-query", json={"query": QUERY, "space": "team-b"})
        assert made.status_code == 200, made.text
        job = made.json()
        assert job["space"] == "team-b"
        doc_id, run_id, exec_id = job["document_id"], job["run_id"], job["execution_id"]

        # the main job stored the document in the space it named
        async with client(eco, "docstore", "user:admin", "*") as admin:
            assert (await admin.get(f"/documents/{doc_id}")).json()["space"] == "team-b"

        # Alice may not store in team-b, and her own run cannot read Bob's spec
        refused = clean(await alice.post("/execute-query",
                                         json={"query": QUERY, "space": "team-b"}))
        assert refused.status_code == 403, refused.text
        own = clean(await alice.post("/execute-query", json={"query": QUERY,
                                                             "space": "team-a"}), spec_id)
        assert own.status_code == 422 and "no OpenAPI spec" in own.json()["detail"]

        absent = "00000000-0000-0000-0000-000000000000"
        # executions (get, events, cancel) and documents (provenance, download, refresh)
        assert await every_route_by_id(alice, {"execution_id": exec_id,
                                               "document_id": doc_id}) >= 6
        assert (await alice.head(f"/documents/{doc_id}/download")).status_code == 404

        # another user's list answer holds what their spaces let them find
        listed = (await bob.post("/execute-query", json={"query": "list documents"})).json()
        assert SECRET in str(listed["documents"])
        same_404(clean(await alice.get(f"/executions/{listed['execution_id']}")),
                 await alice.get(f"/executions/{absent}"), listed["execution_id"], absent)

        # Bob, a member, sees his own
        assert (await bob.get(f"/executions/{exec_id}")).json()["document_id"] == doc_id
        assert SECRET in (await bob.get(f"/documents/{doc_id}/provenance")).text
        assert SECRET in (await bob.get(f"/documents/{doc_id}/download")).text

    async with client(eco, "orchestrator", "user:bob") as bob, \
            client(eco, "orchestrator", "user:alice", *ALICE) as alice:
        assert (await bob.get(f"/runs/{run_id}")).json()["space"] == "team-b"
        assert run_id in {r["id"] for r in (await bob.get("/runs")).json()["items"]}
        assert await every_route_by_id(alice, {"run_id": run_id}, doc_id) >= 3
        assert clean(await alice.get("/runs", params={"space": "team-b"}), run_id
                     ).json()["items"] == []
        clean(await alice.get("/runs"), run_id)
        started = clean(await alice.post("/workflows/document-generation/runs", json={
            "input": {"query": QUERY, "spec_document_id": spec_id, "space": "team-a"}}))
        assert started.status_code == 202
        ended = await alice.get(f"/runs/{started.json()['id']}", params={"wait": 60})
        assert ended.json()["status"] == "failed" and "not found" in ended.json()["error"]
        clean(ended)

    async with client(eco, "analysis", "user:bob") as bob, \
            client(eco, "analysis", "user:alice") as alice:
        change = {"source": f"docstore:{spec_id}", "base": {"document_id": spec_id},
                  "head": {"content": changed_spec()}}
        found = await bob.post("/findings", json=change)
        assert found.status_code == 201, found.text
        finding = found.json()
        assert finding["space"] == "team-b"
        assert [d["document_id"] for d in finding["documents"]] == [doc_id]
        assert finding["id"] in {f["id"] for f in (await bob.get("/findings")).json()}
        assert (await bob.get(f"/findings/{finding['id']}")).status_code == 200

        assert clean(await alice.get("/findings"), doc_id, finding["id"]).json() == []
        assert clean(await alice.get("/findings", params={"document_id": doc_id})
                     ).json() == []
        assert await every_route_by_id(alice, {"finding_id": finding["id"]}, doc_id) >= 1
        theirs = {"content": user_service_spec()}
        for path, body in (("/check", {"document": {"document_id": doc_id}, "spec": theirs}),
                           ("/diff", {"base": {"document_id": spec_id}, "head": theirs})):
            answer = clean(await alice.post(path, json=body))
            assert answer.status_code == 404, answer.text
        stolen = await alice.post("/findings", json=change)
        assert stolen.status_code == 404 and finding["id"] not in stolen.text

    async with client(eco, "logcollector", "user:bob") as bob, \
            client(eco, "logcollector", "user:alice") as alice:
        async def bobs_events_collected() -> bool:
            page = (await bob.get("/events", params={"limit": 1000})).json()["items"]
            return {"llmdocs.spec.changed", "llmdocs.execution.completed"} <= {
                e["type"] for e in page if e["space"] == "team-b"}

        await eventually(bobs_events_collected, attempts=3000)
        bobs = (await bob.get("/events", params={"limit": 1000})).json()["items"]
        correlation = next(e["correlation_id"] for e in bobs
                           if e["type"] == "llmdocs.execution.completed"
                           and e["data"]["execution_id"] == exec_id)
        assert (await bob.get(f"/correlations/{correlation}")).status_code == 200

        seen = clean(await alice.get("/events", params={"limit": 1000}), doc_id, run_id,
                     exec_id)
        assert seen.json()["items"]  # her own, and those about no space
        assert {e["space"] for e in seen.json()["items"]} <= {None, "default", "team-a"}
        for q in (SECRET, doc_id):
            assert clean(await alice.get("/events", params={"q": q}), doc_id
                         ).json()["items"] == []
        timeline = await alice.get(f"/correlations/{correlation}")
        assert timeline.status_code in (200, 404)
        clean(timeline, doc_id, run_id, exec_id)
        assert all(entry["kind"] == "event" for entry in timeline.json().get("timeline", []))
        # service logs may quote any document: auditors and admins only
        assert (await alice.get("/logs")).status_code == 403
        assert (await alice.get("/logs/stream")).status_code == 403
    async with client(eco, "logcollector", "user:auditor", "logs:read", "logs:audit"
                      ) as auditor:
        assert (await auditor.get("/logs")).status_code == 200


async def test_a_finding_shows_only_to_members_and_only_their_documents(
        spaced: tuple[Settings, str]) -> None:
    """Findings of a URL touching documents of one, two or no spaces, and of a stored
    spec in `default` touching another space's document, as Alice and Bob see them."""
    eco, _ = spaced
    now = utcnow()
    diff = {"changes": [], "summary": {"breaking": 0, "non_breaking": 0}}

    def finding(id: str, source: str, space: str | None, docs: dict[str, str]) -> Finding:
        return Finding(id=id, source=source, space=space, base="a", head="b", diff=diff,
                       documents=[{"document_id": d, "version": 1, "space": s, "changes": []}
                                  for d, s in docs.items()],
                       status="open",
                       reason=f"regeneration failed: b-doc: {SECRET}" if docs else None,
                       closed_by={d: 2 for d in docs}, created_at=now, updated_at=now)

    made = [finding("f-only-b", "url:https://x.example/1", None, {"b-doc": "team-b"}),
            finding("f-both", "url:https://x.example/2", None,
                    {"a-doc": "team-a", "b-doc": "team-b"}),
            finding("f-default", "docstore:spec-1", "default", {"b-doc": "team-b"}),
            finding("f-none", "url:https://x.example/3", None, {})]
    database = Database(eco.database_url)
    try:
        async with database.transaction() as session:
            session.add_all(made)
            await session.flush()
            session.add_all([FindingDocument(finding_id=f.id, document_id=d["document_id"],
                                             space=d["space"])
                             for f in made for d in f.documents])
    finally:
        await database.dispose()
    async with client(eco, "analysis", "user:alice") as alice, \
            client(eco, "analysis", "user:bob") as bob:
        mine = {f["id"]: f for f in clean(await alice.get("/findings"), "b-doc").json()}
        assert set(mine) == {"f-both", "f-default", "f-none"}
        assert [d["document_id"] for d in mine["f-both"]["documents"]] == ["a-doc"]
        assert mine["f-both"]["closed_by"] == {"a-doc": 2}
        assert mine["f-default"]["documents"] == []
        assert (await alice.get("/findings/f-only-b")).status_code == 404
        assert clean(await alice.get("/findings", params={"document_id": "b-doc"})
                     ).json() == []
        theirs = {f["id"] for f in (await bob.get("/findings")).json()}
        assert theirs == {"f-only-b", "f-both", "f-default", "f-none"}
        assert "Zebrafinch" in (await bob.get("/findings/f-only-b")).text
