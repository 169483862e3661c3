"""Prompts over real HTTP: versions, labels, rendering, lifecycle, search and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services import create_app
from llmdocs.services.promptstore.seeding import load_seeds

GREETING = {"name": "greeting", "content": "Hello {{ who }}, welcome to {{ place }}.",
            "category": "demo", "description": "Greets a user", "tags": ["demo", "smoke"]}


async def create(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    answer = await http.post("/prompts", json={**GREETING, **fields})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = answer.json()
    return body


async def test_versions_labels_and_rendering_on_both_databases(
    serve: Any, settings: Settings, database_url: str, auth: Any
) -> None:
    settings.database_url = database_url
    running = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=running.url + "/api/v1",
                                 headers=auth("prompts:*")) as http:
        made = await create(http)
        pid = made["id"]
        assert made["labels"] == {"latest": 1, "production": 1}
        assert [v["name"] for v in made["current"]["variables"]] == ["who", "place"]

        v2 = await http.post(f"/prompts/{pid}/versions", json={
            "content": "Hi {{ who }}! This is {{ place }}.", "message": "shorter",
            "labels": ["staging"]})
        assert v2.status_code == 201 and v2.json()["version"] == 2
        assert sorted(v2.json()["labels"]) == ["latest", "staging"]

        production = (await http.get("/prompts/by-name/greeting")).json()
        assert production["version"] == 1 and production["label"] == "production"
        staging = (await http.get("/prompts/by-name/greeting", params={"label": "staging"}))
        assert staging.json()["version"] == 2
        pinned = await http.get("/prompts/by-name/greeting", params={"version": 1})
        assert pinned.json()["content"] == GREETING["content"]

        rendered = await http.post("/prompts/by-name/greeting/render",
                                   json={"variables": {"who": "Ada", "place": "llmdocs"}})
        assert rendered.json()["text"] == "Hello Ada, welcome to llmdocs."

        # promote v2, then roll back to v1; the cache must follow every move
        moved = await http.put(f"/prompts/{pid}/labels/production", json={"version": 2})
        assert moved.json()["labels"]["production"] == 2
        assert (await http.get("/prompts/by-name/greeting")).json()["version"] == 2
        back = await http.post(f"/prompts/{pid}/rollback", json={"label": "production"})
        assert back.json()["labels"]["production"] == 1
        assert (await http.get("/prompts/by-name/greeting")).json()["version"] == 1

        history = (await http.get(f"/prompts/{pid}/versions")).json()
        assert [v["version"] for v in history] == [2, 1]
        assert history[0]["message"] == "shorter"
        assert history[0]["created_by"] == "user:tester"

        diff = (await http.get(f"/prompts/{pid}/diff", params={"from": 1, "to": 2})).json()
        assert "-Hello {{ who }}, welcome to {{ place }}." in diff["diff"]
        assert "+Hi {{ who }}! This is {{ place }}." in diff["diff"]

        duplicate = await http.post("/prompts", json=GREETING)
        assert "already exists" in problem(duplicate, 409)["detail"]


async def test_render_validates_variables_and_refuses_sandbox_escapes(
    http: httpx.AsyncClient
) -> None:
    await create(http)
    answer = await http.post("/prompts/by-name/greeting/render",
                             json={"variables": {"who": "Ada", "extra": 1}})
    body = problem(answer, 422)
    assert "unknown: extra" in body["detail"] and "missing: place" in body["detail"]
    assert {e["field"] for e in body["errors"]} == {"variables.extra", "variables.place"}

    escape = await http.post("/prompts", json={
        "name": "escape", "content": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    assert "refused" in problem(escape, 422)["detail"]
    # a path the static check cannot see: getattr through a filter is refused at render
    sneaky = await create(http, name="sneaky", content="{{ x|attr('__class__') }}")
    refused = await http.post("/prompts/by-name/sneaky/render", json={"variables": {"x": 1}})
    assert "sandbox" in problem(refused, 422)["detail"].lower()
    assert sneaky["current"]["variables"] == [
        {"name": "x", "description": "", "required": True, "default": None}]

    mutate = await create(http, name="mutate", content="{{ items.append(1) }}{{ items }}")
    assert mutate["id"]
    blocked = await http.post("/prompts/by-name/mutate/render",
                              json={"variables": {"items": [0]}})
    assert problem(blocked, 422)["detail"]


async def test_syntax_errors_name_line_and_column(http: httpx.AsyncClient) -> None:
    answer = await http.post("/prompts", json={
        "name": "broken", "content": "Line one\nHello {{ who }} and {{ oops( }}\n"})
    body = problem(answer, 422)
    error = body["errors"][0]
    assert (error["line"], error["column"]) == (2, 21)
    assert "line 2, column 21" in body["detail"]

    undeclared = await http.post("/prompts", json={
        "name": "undeclared", "content": "{{ a }} {{ b }}", "variables": ["a"]})
    assert "undeclared variables: b" in problem(undeclared, 422)["detail"]


async def test_unknown_things_are_404_and_bad_labels_422(http: httpx.AsyncClient) -> None:
    made = await create(http)
    pid = made["id"]
    assert "No prompt named" in problem(await http.get("/prompts/by-name/nope"), 404)["detail"]
    missing_label = await http.get("/prompts/by-name/greeting", params={"label": "canary"})
    assert "labels: latest, production" in problem(missing_label, 404)["detail"]
    assert problem(await http.get("/prompts/by-name/greeting", params={"version": 9}), 404)
    assert problem(await http.put(f"/prompts/{pid}/labels/x", json={"version": 5}), 404)
    assert problem(await http.put(f"/prompts/{pid}/labels/latest", json={"version": 1}), 422)
    assert problem(await http.post(f"/prompts/{pid}/rollback", json={}), 409)
    assert problem(await http.get(f"/prompts/{pid}/diff", params={"from": 1, "to": 3}), 404)
    bad_name = await http.post("/prompts", json={**GREETING, "name": "Bad Name!"})
    assert problem(bad_name, 422)["errors"][0]["field"] == "body.name"
    chat_as_text = await http.post("/prompts", json={**GREETING, "name": "c", "type": "chat"})
    assert problem(chat_as_text, 422)


async def test_lifecycle_fork_and_chat_prompts(http: httpx.AsyncClient) -> None:
    made = await create(http)
    pid = made["id"]
    draft = await http.post(f"/prompts/{pid}/versions", json={
        "content": "Draft {{ who }} {{ place }}", "state": "draft"})
    assert draft.json()["state"] == "draft"
    assert "only published" in problem(
        await http.put(f"/prompts/{pid}/labels/production", json={"version": 2}), 409)["detail"]
    published = await http.put(f"/prompts/{pid}/versions/2/state", json={"state": "published"})
    assert published.json()["state"] == "published"
    assert problem(await http.put(f"/prompts/{pid}/versions/2/state",
                                  json={"state": "draft"}), 409)
    labelled = await http.put(f"/prompts/{pid}/versions/1/state", json={"state": "deprecated"})
    assert labelled.json()["state"] == "deprecated"
    archive = await http.put(f"/prompts/{pid}/versions/1/state", json={"state": "archived"})
    assert "production" in problem(archive, 409)["detail"]

    fork = await http.post(f"/prompts/{pid}/fork", json={"name": "greeting-formal",
                                                         "version": 1})
    assert fork.status_code == 201
    forked = fork.json()
    assert forked["id"] != pid and forked["forked_from"] == pid
    assert forked["current"]["content"] == GREETING["content"]
    assert forked["labels"] == {"latest": 1}

    chat = await http.post("/prompts", json={
        "name": "chatty", "type": "chat", "content": [
            {"role": "system", "content": "You write for {{ audience }}."},
            {"role": "user", "content": "Explain {{ topic }}."}]})
    assert chat.status_code == 201
    out = await http.post("/prompts/by-name/chatty/render",
                          json={"variables": {"audience": "devs", "topic": "labels"}})
    assert out.json()["messages"] == [
        {"role": "system", "content": "You write for devs."},
        {"role": "user", "content": "Explain labels."}]


async def test_search_and_listing_with_filters(http: httpx.AsyncClient) -> None:
    await create(http)
    await create(http, name="farewell", content="Goodbye {{ who }}", tags=["demo"],
                 description="Says goodbye")
    found = (await http.post("/prompts/search", json={"query": "welcome"})).json()
    assert [p["name"] for p in found["items"]] == ["greeting"]
    both = (await http.post("/prompts/search", json={"query": "who", "category": "demo"}))
    assert {p["name"] for p in both.json()["items"]} == {"greeting", "farewell"}
    tagged = (await http.post("/prompts/search", json={"tags": ["smoke"]})).json()
    assert [p["name"] for p in tagged["items"]] == ["greeting"]
    by_name_first = (await http.post("/prompts/search", json={"query": "farewell"})).json()
    assert by_name_first["items"][0]["name"] == "farewell"
    literal = (await http.post("/prompts/search", json={"query": "100%_"})).json()
    assert literal["total"] == 0

    page = (await http.get("/prompts", params={"category": "demo", "limit": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    second = (await http.get("/prompts", params={"category": "demo", "limit": 1,
                                                 "offset": 1})).json()
    assert second["items"][0]["name"] != page["items"][0]["name"]


async def test_seed_prompts_exist_render_and_survive_a_restart(
    serve: Any, settings: Settings, http: httpx.AsyncClient, auth: Any
) -> None:
    seeds = load_seeds()
    names = {s.name for s in seeds}
    assert names == {"intent-detection", "outline", "section-writing", "review", "revision",
                     "summarisation", "api-overview", "api-getting-started",
                     "api-group-intro"}
    values = {"query": "Document the user service", "sources": "GET /users lists users",
              "outline": "- Users: endpoints", "section": "Users", "draft": "## Users",
              "gaps": "GET /users is missing", "title": "User Service", "version": "1.4.0",
              "description": "Manages users.", "tags": "users", "tag": "users",
              "tag_description": "", "server": "https://api.example.com/v1",
              "auth": "`bearerAuth`", "first_call": "GET /users: List users",
              "operations": "GET /users: List users"}
    for seed in seeds:
        resolved = (await http.get(f"/prompts/by-name/{seed.name}")).json()
        assert resolved["version"] == 1
        needed = {v["name"] for v in resolved["variables"] if v["required"]}
        rendered = await http.post(f"/prompts/by-name/{seed.name}/render", json={
            "variables": {k: v for k, v in values.items() if k in needed}})
        assert rendered.status_code == 200, (seed.name, rendered.text)
        assert "{{" not in rendered.json()["text"]
    # edited seeds are not overwritten by the next start
    pid = (await http.get("/prompts/outline")).json()["id"]
    await http.post(f"/prompts/{pid}/versions", json={
        "content": "Outline {{ query }} from {{ sources }} as {{ doc_type }}",
        "labels": ["production"]})
    again = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=again.url + "/api/v1",
                                 headers=auth("prompts:read")) as other:
        outline = (await other.get("/prompts/by-name/outline")).json()
    assert outline["version"] == 2


async def test_scopes_are_enforced(store_url: str, auth: Any) -> None:
    async with httpx.AsyncClient(base_url=store_url + "/api/v1") as http:
        read_only = auth("prompts:read")
        assert (await http.get("/prompts", headers=read_only)).status_code == 200
        denied = await http.post("/prompts", json=GREETING, headers=read_only)
        assert problem(denied, 403)["detail"].endswith("prompts:write.")
        assert (await http.get("/prompts")).status_code == 401


@pytest.mark.parametrize("weights", [[50, 30], [0.5, 0.6]])
async def test_weights_that_do_not_sum_up_are_422(
    http: httpx.AsyncClient, weights: list[float]
) -> None:
    made = await create(http)
    await http.post(f"/prompts/{made['id']}/versions", json={"content": "Yo {{ who }}"})
    answer = await http.post("/abtests", json={
        "prompt": "greeting", "name": "t", "variants": [
            {"version": 1, "weight": weights[0]}, {"version": 2, "weight": weights[1]}]})
    assert "must sum to 1 or 100" in problem(answer, 422)["errors"][0]["message"]
