"""Bad input to the prompt-store's writes on PostgreSQL, each once a 500 (or a hang):
text with a NUL or a lone surrogate, a config or a variable's default PostgreSQL or a
JSON writer cannot take, a NUL in a path, a label longer than its column, a version
past int4, and a search with 100,000 tags (a query built of 100,000 conditions held
the worker for minutes). Each is a 422 naming the field; the prompt stays as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from badinput import HUGE_INT, JSON_VALUES, NUL, TEXT, assert_refused, send
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

PROMPT: dict[str, Any] = {
    "name": "p1", "category": "general", "description": "d", "tags": ["t"],
    "content": "Hello {{ who }}", "variables": [{"name": "who", "description": "d"}],
    "config": {"model": "m"}, "message": "m"}
TEXT_FIELDS = ["category", "description", "message", "content", "tags.0",
               "variables.0.description"]


def with_value(path: str, value: Any) -> dict[str, Any]:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    changed: dict[str, Any] = {**PROMPT, "name": "p2", "tags": ["t"],
                               "variables": [{"name": "who", "description": "d"}]}
    node: Any = changed
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


@pytest.fixture
async def http(serve: Any, settings: Settings, pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings.database_url = pg_url
    running = await serve(create_app("promptstore", settings))
    token = issue_token(settings, "user:admin", ["*"])
    async with httpx.AsyncClient(base_url=running.url + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        assert (await client.post("/prompts", json=PROMPT)).status_code == 201
        yield client


async def current(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.get("/prompts/p1")
    assert answer.status_code == 200, answer.text
    prompt: dict[str, Any] = answer.json()
    return prompt


@pytest.mark.parametrize("kind", sorted(TEXT))
async def test_text_a_column_cannot_hold_is_a_422(http: httpx.AsyncClient, kind: str) -> None:
    before = await current(http)
    bad = TEXT[kind]
    for field in TEXT_FIELDS:
        assert_refused(await send(http, "POST", "/prompts", with_value(field, bad)), field)
    chat = {**PROMPT, "name": "c1", "type": "chat",
            "content": [{"role": "user", "content": bad}]}
    assert_refused(await send(http, "POST", "/prompts", chat), "content")
    assert_refused(await send(http, "POST", "/prompts/p1/versions", {"content": bad}),
                   "content")
    assert_refused(await send(http, "PATCH", "/prompts/p1", {"description": bad}),
                   "description")
    for field in ["query", "category"]:
        assert_refused(await send(http, "POST", "/prompts/search", {field: bad}), field)
    assert_refused(await send(http, "POST", "/prompts/p1/render",
                              {"variables": {"who": bad}}), "variables")
    assert await current(http) == before


async def test_free_form_json_is_json_every_writer_takes(http: httpx.AsyncClient) -> None:
    before = await current(http)
    for value in JSON_VALUES.values():
        assert_refused(await send(http, "POST", "/prompts", with_value("config", value)),
                       "config")
        assert_refused(await send(http, "POST", "/prompts",
                                  with_value("variables.0.default", value)), "default")
        assert_refused(await send(http, "POST", "/prompts/p1/versions",
                                  {"content": "Hi", "config": value}), "config")
    assert await current(http) == before


async def test_paths_numbers_and_lists_past_their_bounds_are_a_422(
        http: httpx.AsyncClient) -> None:
    before = await current(http)
    for method, path, body in [
            ("PATCH", "/prompts/a%00b", {"description": "x"}),
            ("POST", "/prompts/a%00b/versions", {"content": "x"}),
            ("POST", "/prompts/a%00b/render", {}),
            ("POST", "/prompts/by-name/a%00b/render", {})]:
        assert_refused(await send(http, method, path, body), "ref" if "by-name" not in path
                       else "name")
    assert_refused(await send(http, "PUT", "/prompts/p1/labels/" + "x" * 500,
                              {"version": 1}), "label")
    assert_refused(await send(http, "POST", "/abtests/a%00b/stop", None), "test_id")
    assert_refused(await send(http, "PUT", f"/prompts/p1/versions/{HUGE_INT}/state",
                              {"state": "published"}), "version")
    versions: list[tuple[str, dict[str, Any]]] = [
        ("/prompts/p1/render", {"version": HUGE_INT}),
        ("/prompts/p1/fork", {"name": "f1", "version": HUGE_INT}),
        ("/prompts/p1/rollback", {"version": HUGE_INT}),
        ("/abtests", {"prompt": "p1", "name": "ab", "variants": [
            {"version": 1, "weight": 0.5}, {"version": HUGE_INT, "weight": 0.5}]})]
    for path, value in versions:
        assert_refused(await send(http, "POST", path, value), "version")
    assert_refused(await send(http, "PUT", "/prompts/p1/labels/staging",
                              {"version": HUGE_INT}), "version")
    assert_refused(await send(http, "POST", "/prompts/search", {"offset": HUGE_INT}), "offset")
    many = await send(http, "POST", "/prompts/search", {"tags": ["x"] * 100_000})
    assert_refused(many, "tags")
    assert await current(http) == before


async def test_a_listing_filter_past_its_bounds_is_a_422(http: httpx.AsyncClient) -> None:
    for path, name, value in [("/prompts", "tag", NUL), ("/prompts", "category", NUL),
                              ("/prompts", "offset", str(HUGE_INT)),
                              ("/abtests", "prompt", NUL),
                              ("/prompts/by-name/p1", "label", NUL),
                              ("/prompts/by-name/p1", "version", str(HUGE_INT))]:
        assert_refused(await http.get(path, params={name: value}), name)
    many = await http.get("/prompts", params={"tag": ["x"] * 1000})
    assert_refused(many, "tag")
