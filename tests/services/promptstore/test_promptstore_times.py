"""Every time the prompt-store answers is RFC 3339 with a UTC offset, as its OpenAPI
document's `date-time` says: on SQLite its times came back without one (a fuzzer
counted 29 response-schema violations), as SQLite hands datetimes back naive."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

# a time as JSON carries it; the offset is the group that must be there
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?")


@pytest.fixture
async def http(serve: Any, settings: Settings, database_url: str
               ) -> AsyncIterator[httpx.AsyncClient]:
    settings.database_url = database_url
    running = await serve(create_app("promptstore", settings))
    token = issue_token(settings, "user:tester", ["prompts:read", "prompts:write"])
    async with httpx.AsyncClient(base_url=running.url + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def times(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string of an answer that is a time, with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from times(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from times(item, f"{where}[{index}]")
    elif isinstance(value, str) and TIME.fullmatch(value):
        yield where, value


async def test_every_time_answered_has_a_utc_offset(http: httpx.AsyncClient) -> None:
    answers: list[tuple[str, httpx.Response]] = []

    async def call(method: str, path: str, **options: Any) -> Any:
        answer = await http.request(method, path, **options)
        assert answer.status_code < 300, (method, path, answer.text)
        answers.append((f"{method} {path}", answer))
        return answer.json()

    made = await call("POST", "/prompts", json={"name": "timed", "content": "Hi {{ x }}"})
    ref = made["id"]
    await call("POST", f"/prompts/{ref}/versions", json={"content": "Hello {{ x }}",
                                                          "state": "draft"})
    await call("GET", "/prompts")
    await call("POST", "/prompts/search", json={"query": "timed"})
    await call("GET", f"/prompts/{ref}")
    await call("GET", "/prompts/by-name/timed")
    await call("PATCH", f"/prompts/{ref}", json={"description": "timed prompt"})
    await call("GET", f"/prompts/{ref}/versions")
    await call("GET", f"/prompts/{ref}/versions/1")
    await call("PUT", f"/prompts/{ref}/versions/2/state", json={"state": "published"})
    await call("PUT", f"/prompts/{ref}/labels/staging", json={"version": 2})
    await call("DELETE", f"/prompts/{ref}/labels/staging")
    await call("POST", f"/prompts/{ref}/rollback", json={"version": 1})
    await call("POST", f"/prompts/{ref}/fork", json={"name": "timed-copy"})
    test = await call("POST", "/abtests", json={
        "prompt": "timed", "name": "wording", "variants": [
            {"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}]})
    await call("GET", "/abtests")
    await call("GET", f"/abtests/{test['id']}")
    await call("POST", f"/abtests/{test['id']}/outcomes", json={"version": 1, "success": True})
    await call("GET", f"/abtests/{test['id']}/results")
    await call("POST", f"/abtests/{test['id']}/stop")

    seen = 0
    for name, answer in answers:
        for where, text in times(answer.json()):
            match = TIME.fullmatch(text)
            assert match is not None and match[1] is not None, (name, where, text)
            moment = datetime.fromisoformat(text)
            assert moment.utcoffset() == timedelta(0), (name, where, text)
            seen += 1
    stopped = answers[-1][1].json()["test"]
    assert stopped["stopped_at"] is not None and stopped["created_at"]
    assert seen >= 40, seen  # created_at, updated_at and stopped_at of most answers
