"""Spaces in the doc-store: a member of another space learns nothing of a document —
every read path answers as for a missing one, search never shows its snippets — a
viewer cannot write, grants and revokes apply at once, `default` stays open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from llmdocs.cli import app
from llmdocs.core.auth import issue_token, service_token
from llmdocs.core.config import Settings
from llmdocs.migrations import upgrade
from llmdocs.services import create_app
from services.docstore.conftest import Store

SECRET = "zebracorn quarterly plans"  # in no other document, nor any answer's own words
USER = ("docs:read", "docs:write")


@dataclass
class Served:
    url: str
    settings: Settings


def client(store: Store | Served, subject: str, *scopes: str) -> httpx.AsyncClient:
    token = issue_token(store.settings, subject, scopes or USER)
    return httpx.AsyncClient(base_url=store.url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})


class Team:
    """An admin, a space `team-a` with alice (editor) and carol (viewer), and bob, a
    member of `team-b` only; alice's document in team-a holds `SECRET`."""

    def __init__(self, store: Store, stack: AsyncExitStack) -> None:
        self.store = store
        self.stack = stack

    async def open(self) -> Team:
        make = partial(client, self.store)
        self.admin = await self.stack.enter_async_context(make("user:root", "*"))
        self.alice = await self.stack.enter_async_context(make("user:alice"))
        self.bob = await self.stack.enter_async_context(make("user:bob"))
        self.carol = await self.stack.enter_async_context(make("user:carol"))
        for name in ("team-a", "team-b"):
            made = await self.admin.post("/spaces", json={"name": name})
            assert made.status_code == 201, made.text
        for space, who, role in (("team-a", "user:alice", "editor"),
                                 ("team-a", "user:carol", "viewer"),
                                 ("team-b", "user:bob", "editor")):
            granted = await self.admin.put(f"/spaces/{space}/members/{who}",
                                           json={"role": role})
            assert granted.status_code == 200, granted.text
        made = await self.alice.post("/documents", json={
            "content": f"# Plans\n\n{SECRET}", "title": "Team A plans", "space": "team-a",
            "provenance": {"llm_calls": [{"model": "m"}]}})
        assert made.status_code == 201, made.text
        self.doc = made.json()
        assert self.doc["space"] == "team-a"
        return self


@pytest.fixture
async def team(store: Store) -> AsyncIterator[Team]:
    async with AsyncExitStack() as stack:
        yield await Team(store, stack).open()


def read_paths(doc_id: str) -> list[str]:
    """Every doc-store route that reads one document by id."""
    return [f"/documents/{doc_id}", f"/documents/{doc_id}/download",
            f"/documents/{doc_id}/versions", f"/documents/{doc_id}/versions/1",
            f"/documents/{doc_id}/diff?from=1&to=1", f"/documents/{doc_id}/provenance",
            f"/documents/{doc_id}/relations", f"/documents/{doc_id}/lineage",
            f"/documents/{doc_id}?include_deleted=true"]


def without(body: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """A problem body with the document id it names (and the request path) blanked,
    and without its correlation id (each request's own)."""
    body = {k: v for k, v in body.items() if k != "correlation_id"}
    return dict(json.loads(json.dumps(body).replace(doc_id, "ID")))


async def test_another_space_is_a_404_as_for_a_missing_document(team: Team) -> None:
    doc_id = team.doc["document_id"]
    missing_id = "0" * len(doc_id)
    for path in read_paths(doc_id):
        for member in (team.alice, team.carol):
            assert (await member.get(path)).status_code == 200, path
        hidden = await team.bob.get(path)
        absent = await team.bob.get(path.replace(doc_id, missing_id))
        assert hidden.status_code == absent.status_code == 404, (path, hidden.text)
        assert SECRET.split()[0] not in hidden.text and "Team A" not in hidden.text
        assert without(hidden.json(), doc_id) == without(absent.json(), missing_id), path
    writes = [("PUT", f"/documents/{doc_id}", {"content": "x"}),
              ("PATCH", f"/documents/{doc_id}", {"tags": ["x"]}),
              ("POST", f"/documents/{doc_id}/rollback", {"version": 1}),
              ("POST", f"/documents/{doc_id}/relations",
               {"type": "references", "target_id": doc_id}),
              ("DELETE", f"/documents/{doc_id}/relations/references/{doc_id}", None),
              ("POST", f"/documents/{doc_id}/restore", None),
              ("DELETE", f"/documents/{doc_id}", None)]
    for method, path, body in writes:
        answer = await team.bob.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert SECRET.split()[0] not in answer.text
    assert (await team.alice.get(f"/documents/{doc_id}")).status_code == 200  # untouched


async def test_lists_and_search_show_only_the_callers_spaces(team: Team) -> None:
    ours = await team.bob.post("/documents", json={"content": f"# Bob\n\n{SECRET} of B",
                                                   "space": "team-b"})
    assert ours.status_code == 201, ours.text
    opened = await team.bob.post("/documents", json={"content": f"# Open\n\n{SECRET}, open"})
    assert opened.json()["space"] == "default"
    listed = {d["document_id"] for d in (await team.bob.get("/documents")).json()["items"]}
    assert listed == {ours.json()["document_id"], opened.json()["document_id"]}
    found = (await team.bob.get("/search", params={"q": "zebracorn"})).json()["items"]
    assert {hit["document_id"] for hit in found} == listed
    assert all("Team A" not in hit["title"] for hit in found)
    searched = await team.alice.get("/search", params={"q": "zebracorn", "tag": []})
    hits = {hit["document_id"]: hit for hit in searched.json()["items"]}
    assert set(hits) == {team.doc["document_id"], opened.json()["document_id"]}
    assert "zebracorn" in hits[team.doc["document_id"]]["snippet"]
    for filtered in ({"source": ""}, {"format": "markdown"}):  # the filtered statement too
        page = (await team.bob.get("/search", params={"q": "zebracorn", **filtered})).json()
        assert team.doc["document_id"] not in {hit["document_id"] for hit in page["items"]}
    everything = (await team.admin.get("/documents")).json()["items"]
    assert len(everything) == 3  # spaces:admin (here `*`) sees every space


async def test_a_viewer_reads_but_cannot_write(team: Team) -> None:
    doc_id = team.doc["document_id"]
    assert (await team.carol.get(f"/documents/{doc_id}")).status_code == 200
    for method, path, body in (("PUT", f"/documents/{doc_id}", {"content": "x"}),
                               ("PATCH", f"/documents/{doc_id}", {"tags": ["x"]}),
                               ("DELETE", f"/documents/{doc_id}", None),
                               ("POST", "/documents", {"content": "y", "space": "team-a"})):
        answer = await team.carol.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    granted = await team.carol.put("/spaces/team-a/members/user:dave", json={"role": "admin"})
    assert granted.status_code == 403, granted.text
    edited = await team.alice.put(f"/documents/{doc_id}", json={"content": "v2"})
    assert edited.status_code == 200, edited.text


async def test_writing_into_an_unknown_or_unseen_space_is_a_422(team: Team) -> None:
    for space in ("team-a", "nowhere"):
        answer = await team.bob.post("/documents", json={"content": "z", "space": space})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith(f"No space {space!r} that you are")
    bad = await team.bob.post("/documents", json={"content": "z", "space": "Team A"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.space"
    lines = "\n".join(json.dumps(line) for line in (
        {"content": "one", "space": "team-b"}, {"content": "two", "space": "team-a"},
        {"content": "three", "relations": [{"type": "references",
                                            "target_id": team.doc["document_id"]}]}))
    answers = await team.bob.post("/documents/bulk", content=lines,
                                  headers={"content-type": "application/x-ndjson"})
    statuses = [json.loads(line)["status"] for line in answers.text.splitlines()]
    assert statuses == [201, 422, 422], answers.text
    related = await team.bob.post("/documents", json={"content": "four", "relations": [
        {"type": "references", "target_id": team.doc["document_id"]}]})
    assert related.status_code == 422, related.text
    assert "do not exist" in related.json()["detail"]


async def test_grant_and_revoke_apply_at_once(team: Team) -> None:
    path = f"/documents/{team.doc['document_id']}"
    assert (await team.bob.get(path)).status_code == 404
    mine = (await team.bob.get("/spaces/mine")).json()
    assert mine == {"subject": "user:bob", "spaces": [{"name": "team-b", "role": "editor"}]}
    granted = await team.alice.put("/spaces/team-a/members/user:bob", json={"role": "viewer"})
    assert granted.status_code == 403  # an editor is no admin of the space
    granted = await team.admin.put("/spaces/team-a/members/user:bob", json={"role": "viewer"})
    assert granted.status_code == 200 and granted.json()["granted_by"] == "user:root"
    assert (await team.bob.get(path)).status_code == 200
    seen = {s["name"]: s["role"] for s in (await team.bob.get("/spaces")).json()["items"]}
    assert seen == {"default": "editor", "team-a": "viewer", "team-b": "editor"}
    members = (await team.bob.get("/spaces/team-a/members")).json()["items"]
    assert {m["subject"]: m["role"] for m in members} == {
        "user:alice": "editor", "user:bob": "viewer", "user:carol": "viewer",
        "user:root": "admin"}
    assert (await team.admin.delete("/spaces/team-a/members/user:bob")).status_code == 204
    assert (await team.bob.get(path)).status_code == 404
    assert (await team.admin.delete("/spaces/team-a/members/user:bob")).status_code == 404
    assert (await team.bob.get("/spaces/team-a/members")).status_code == 404
    again = await team.admin.post("/spaces", json={"name": "team-a"})
    assert again.status_code == 409
    assert (await team.alice.post("/spaces", json={"name": "mine"})).status_code == 403
    async with client(team.store, "user:docs-admin", "docs:read", "docs:write",
                      "docs:admin") as docs_admin:  # no member of team-b, yet may grant
        granted = await docs_admin.put("/spaces/team-b/members/user:carol",
                                       json={"role": "viewer"})
        assert granted.status_code == 200, granted.text
        assert (await docs_admin.get("/spaces/team-b/members")).status_code == 200


async def test_relations_and_lineage_leave_out_other_spaces(team: Team) -> None:
    spec = await team.bob.post("/documents", json={"content": "# Spec", "title": "Spec"})
    spec_id = spec.json()["document_id"]
    derived = await team.alice.post(
        f"/documents/{team.doc['document_id']}/relations",
        json={"type": "derived_from", "target_id": spec_id})
    assert derived.status_code == 201, derived.text
    for path in (f"/documents/{spec_id}/relations", f"/documents/{spec_id}/provenance",
                 f"/documents/{spec_id}/lineage?direction=down"):
        answer = await team.bob.get(path)
        assert answer.status_code == 200, answer.text
        assert team.doc["document_id"] not in answer.text, path
        assert team.doc["document_id"] in (await team.alice.get(path)).text, path


async def test_services_see_every_space(team: Team) -> None:
    token = service_token(team.store.settings, "analysis")
    answer = await team.store.http.get(f"/documents/{team.doc['document_id']}",
                                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and SECRET in answer.json()["content"]


async def test_a_closed_default_space_is_for_members_only(
        serve: Any, settings: Settings, sqlite_url: str) -> None:
    settings.database_url = sqlite_url
    settings.spaces_default_role = "none"
    running = await serve(create_app("docstore", settings))
    store = Served(running.url, settings)
    async with client(store, "user:root", "*") as admin, client(store, "user:bob") as bob:
        made = await admin.post("/documents", json={"content": "for members"})
        doc_id = made.json()["document_id"]
        assert (await bob.get(f"/documents/{doc_id}")).status_code == 404
        assert (await bob.post("/documents", json={"content": "x"})).status_code == 422
        await admin.put("/spaces/default/members/user:bob", json={"role": "viewer"})
        assert (await bob.get(f"/documents/{doc_id}")).status_code == 200
        assert (await bob.post("/documents", json={"content": "x"})).status_code == 403


async def test_the_migration_puts_existing_documents_in_default(
        serve: Any, settings: Settings, sqlite_url: str) -> None:
    engine = create_async_engine(sqlite_url)
    async with engine.begin() as conn:  # the doc-store as it was before spaces
        await conn.run_sync(lambda sync: upgrade(sync, "docstore_0002"))
        await conn.execute(sa.text(
            "INSERT INTO docstore_documents (id, title, format, source, author, version, "
            "metadata, created_at, updated_at) VALUES ('old', 'Old', 'markdown', '', 'u', 1,"
            " '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        await conn.execute(sa.text(
            "INSERT INTO docstore_versions (document_id, version, is_current, title, content,"
            " media_type, size, content_hash, author, created_at) VALUES ('old', 1, 1, 'Old',"
            " 'an old zebracorn', 'text/markdown', 16, 'h', 'u', '2026-01-01 00:00:00')"))
    await engine.dispose()
    settings.database_url = sqlite_url
    running = await serve(create_app("docstore", settings))
    async with client(Served(running.url, settings), "user:anyone", "docs:read") as anyone:
        got = await anyone.get("/documents/old")
        assert got.status_code == 200 and got.json()["space"] == "default"
        hits = (await anyone.get("/search", params={"q": "zebracorn"})).json()["items"]
        assert [hit["document_id"] for hit in hits] == ["old"]
        spaces = (await anyone.get("/spaces")).json()["items"]
        assert [(s["name"], s["role"]) for s in spaces] == [("default", "editor")]


async def test_the_spaces_commands(sqlite_store: Store, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_DOCSTORE_URL", sqlite_store.url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    async def run(subject: str, *args: str, code: int = 0) -> str:
        scopes = ["docs:*"] if subject == "user:lead" else list(USER)
        token = issue_token(sqlite_store.settings, subject, scopes)
        result = await asyncio.to_thread(runner.invoke, app, list(args),
                                         env={"LLMDOCS_TOKEN": token})
        assert result.exit_code == code, result.output
        return result.output

    assert "created space docs-team" in await run("user:lead", "spaces", "create", "docs-team",
                                                  "--description", "the writers")
    assert "user:ann is editor in docs-team" in await run(
        "user:lead", "spaces", "grant", "docs-team", "user:ann", "editor")
    await run("user:lead", "spaces", "grant", "docs-team", "user:ann", "owner", code=2)
    assert "docs-team" in await run("user:ann", "spaces", "list")
    members = await run("user:ann", "spaces", "list", "--members", "docs-team")
    assert "user:ann" in members and "user:lead" in members
    note = tmp_path / "note.md"
    note.write_text("# Team note\n")
    assert "stored" in await run("user:ann", "docs", "put", str(note), "--space", "docs-team")
    listed = (await sqlite_store.http.get("/documents")).json()["items"]  # user:t, no member
    assert listed == []
    assert "no member" in await run("user:lead", "spaces", "revoke", "docs-team", "user:ann")
    assert "docs-team" not in await run("user:ann", "spaces", "list")
    denied = await run("user:ann", "spaces", "create", "other", code=1)
    assert "403" in denied


async def test_document_events_carry_their_space(team: Team) -> None:
    """Whoever delivers events to users (the log-collector) filters them by `space`."""
    doc_id = team.doc["document_id"]
    assert (await team.alice.patch(f"/documents/{doc_id}", json={"tags": ["t"]})
            ).status_code == 200
    engine = create_async_engine(team.store.settings.database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT envelope FROM eventbus_events WHERE type LIKE 'llmdocs.document.%'"))).scalars()
        events = [json.loads(row) for row in rows]
    await engine.dispose()
    ours = [event for event in events if event["subject"] == doc_id]
    assert [e["type"] for e in ours] == ["llmdocs.document.stored", "llmdocs.document.updated"]
    assert all(e["space"] == e["data"]["space"] == "team-a" for e in ours)
