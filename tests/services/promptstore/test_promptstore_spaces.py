"""Spaces in the prompt-store, with the doc-store that keeps the memberships: a member
of another space gets, on every route that names a prompt or an A/B test, the answer
for a missing one; lists leave its prompts out; a viewer cannot write; grants apply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

SECRET = "zebracorn"  # in the team's prompt, in nothing any answer says of its own
USER = ("prompts:read", "prompts:write")


class Team:
    """team-a with alice (editor) and carol (viewer); bob, a member of nothing; alice's
    prompt `plans` (two versions) in team-a, and an A/B test on it."""

    async def open(self, serve: Any, settings: Settings, stack: AsyncExitStack) -> Team:
        self.settings = settings
        settings.http_retries = 1
        settings.spaces_cache_seconds = 0  # grants show at once (the default: within 5 s)
        docstore = (await serve(create_app("docstore", settings))).url
        settings.docstore_url = docstore
        prompts = (await serve(create_app("promptstore", settings))).url + "/api/v1"

        async def client(base: str, subject: str, *scopes: str) -> httpx.AsyncClient:
            token = issue_token(settings, subject, scopes or USER)
            return await stack.enter_async_context(httpx.AsyncClient(
                base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}))

        self.root = await client(docstore, "user:root", "*")
        self.alice = await client(prompts, "user:alice")
        self.bob = await client(prompts, "user:bob")
        self.carol = await client(prompts, "user:carol")
        assert (await self.root.post("/spaces", json={"name": "team-a"})).status_code == 201
        for who, role in (("user:alice", "editor"), ("user:carol", "viewer")):
            granted = await self.root.put(f"/spaces/team-a/members/{who}", json={"role": role})
            assert granted.status_code == 200, granted.text
        made = await self.alice.post("/prompts", json={
            "name": "plans", "content": f"Write the {SECRET} plan for {{{{ team }}}}",
            "space": "team-a"})
        assert made.status_code == 201, made.text
        assert made.json()["space"] == "team-a"
        second = await self.alice.post("/prompts/plans/versions",
                                       json={"content": f"Plan {SECRET} for {{{{ team }}}}"})
        assert second.status_code == 201, second.text
        test = await self.alice.post("/abtests", json={
            "prompt": "plans", "name": "which",
            "variants": [{"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}]})
        assert test.status_code == 201, test.text
        self.test_id = test.json()["id"]
        return self


@pytest.fixture
async def team(serve: Any, settings: Settings) -> AsyncIterator[Team]:
    async with AsyncExitStack() as stack:
        yield await Team().open(serve, settings, stack)


def by_ref(ref: str, test_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every prompt-store route that names a prompt or an A/B test."""
    return [
        ("GET", f"/prompts/{ref}", None), ("GET", f"/prompts/{ref}/versions", None),
        ("GET", f"/prompts/{ref}/versions/1", None),
        ("GET", f"/prompts/{ref}/diff?from=1&to=2", None),
        ("POST", f"/prompts/{ref}/render", {"variables": {"team": "b"}}),
        ("POST", f"/prompts/{ref}/lint", {}), ("POST", f"/prompts/{ref}/bias-check", {}),
        ("GET", f"/analytics/prompts/{ref}", None), ("GET", f"/prompts/by-name/{ref}", None),
        ("POST", f"/prompts/by-name/{ref}/render", {"variables": {"team": "b"}}),
        ("PATCH", f"/prompts/{ref}", {"description": "mine"}),
        ("POST", f"/prompts/{ref}/versions", {"content": "taken"}),
        ("PUT", f"/prompts/{ref}/versions/1/state", {"state": "deprecated"}),
        ("PUT", f"/prompts/{ref}/labels/stable", {"version": 1}),
        ("DELETE", f"/prompts/{ref}/labels/production", None),
        ("POST", f"/prompts/{ref}/rollback", {"label": "production"}),
        ("POST", f"/prompts/{ref}/fork", {"name": "stolen"}),
        ("POST", f"/optimization/prompts/{ref}/optimize", {"optimization_type": "brevity"}),
        ("POST", "/abtests", {"prompt": ref, "name": "mine",
                              "variants": [{"version": 1, "weight": 0.5},
                                           {"version": 2, "weight": 0.5}]}),
        ("GET", f"/abtests?prompt={ref}", None),
        ("GET", f"/abtests/{test_id}", None),
        ("GET", f"/abtests/{test_id}/assignment?subject=s", None),
        ("GET", f"/abtests/{test_id}/results", None),
        ("POST", f"/abtests/{test_id}/outcomes", {"version": 1, "success": True}),
        ("POST", f"/abtests/{test_id}/stop", None)]


def problem(answer: httpx.Response, *names: str) -> dict[str, Any]:
    """The problem body without what differs per request (the names asked for, the
    correlation id)."""
    text = answer.text
    for i, name in enumerate(names):
        text = text.replace(name, f"<{i}>")
    return {k: v for k, v in json.loads(text).items() if k != "correlation_id"}


async def test_another_space_reads_as_missing_on_every_route(team: Team) -> None:
    prompt_id = (await team.alice.get("/prompts/plans")).json()["id"]
    for ref in ("plans", prompt_id):
        routes = zip(by_ref(ref, team.test_id), by_ref("nothing", "no-test"), strict=True)
        for (method, path, body), (_, absent_path, absent_body) in routes:
            hidden = await team.bob.request(method, path, json=body)
            absent = await team.bob.request(method, absent_path, json=absent_body)
            assert hidden.status_code == absent.status_code, (path, hidden.text)
            assert hidden.status_code in (404, 200), (path, hidden.text)  # 200: an empty list
            assert SECRET not in hidden.text, path
            assert problem(hidden, ref, team.test_id) == problem(absent, "nothing",
                                                                  "no-test"), path
    for path in ("/prompts/plans", f"/abtests/{team.test_id}"):  # all of it untouched
        assert (await team.alice.get(path)).status_code == 200


async def test_lists_and_search_leave_other_spaces_out(team: Team) -> None:
    for who, sees in ((team.bob, False), (team.carol, True), (team.alice, True)):
        listed = (await who.get("/prompts", params={"limit": 200})).json()
        found = (await who.post("/prompts/search", json={"query": SECRET})).json()
        tests = (await who.get("/abtests")).json()
        assert ("plans" in {p["name"] for p in listed["items"]}) is sees
        assert [p["name"] for p in found["items"]] == (["plans"] if sees else [])
        assert found["total"] == (1 if sees else 0)
        assert [t["id"] for t in tests] == ([team.test_id] if sees else [])
    seeded = await team.bob.get("/prompts/by-name/outline")
    assert seeded.json()["space"] == "default"  # the seeded prompts: open to everyone
    resolved = await team.alice.get("/prompts/by-name/plans")
    assert resolved.json()["space"] == "team-a"
    engine = create_async_engine(team.settings.database_url)
    async with engine.connect() as conn:  # what the log-collector filters users' events by
        used = [json.loads(row) for row in (await conn.execute(sa.text(
            "SELECT envelope FROM eventbus_events WHERE type = 'llmdocs.prompt.used'")
        )).scalars()]
    await engine.dispose()
    assert {e["space"] for e in used if e["data"]["name"] == "plans"} == {"team-a"}
    assert {e["space"] for e in used if e["data"]["name"] == "outline"} == {"default"}


async def test_roles_cap_writes_and_grants_apply(team: Team) -> None:
    assert (await team.carol.get("/prompts/plans")).status_code == 200
    patched = await team.carol.patch("/prompts/plans", json={"description": "x"})
    assert patched.status_code == 403, patched.text
    created = await team.carol.post("/prompts", json={"name": "c", "content": "c",
                                                       "space": "team-a"})
    assert created.status_code == 403, created.text
    forked = await team.carol.post("/prompts/plans/fork", json={"name": "c2"})
    assert forked.status_code == 403, forked.text
    elsewhere = await team.carol.post("/prompts/plans/fork",
                                      json={"name": "c3", "space": "default"})
    assert elsewhere.status_code == 201 and elsewhere.json()["space"] == "default"
    for space in ("team-a", "nowhere"):
        refused = await team.bob.post("/prompts", json={"name": "b", "content": "b",
                                                        "space": space})
        assert refused.status_code == 422, refused.text
    granted = await team.root.put("/spaces/team-a/members/user:bob", json={"role": "editor"})
    assert granted.status_code == 200
    assert (await team.bob.patch("/prompts/plans", json={"description": "ok"})).status_code \
        == 200
    assert (await team.root.delete("/spaces/team-a/members/user:bob")).status_code == 204
    assert (await team.bob.get("/prompts/plans")).status_code == 404
