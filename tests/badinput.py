"""What the bad-input tests of each service share: the values PostgreSQL (or a JSON
writer) cannot take, sent as raw JSON text, and the check that the answer is a 4xx
problem document naming the field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.services import create_app

NUL = "a\x00b"
SURROGATE = "a\ud800b"  # json.dumps writes it as the escape "\ud800"
HUGE_INT = 2**70
NESTED = "__nested__"  # stands for JSON nested 200 levels deep
INFINITE = "__1e400__"  # stands for the number 1e400 (no float writes it)

# a text field's bad values, and a free-form JSON field's
TEXT = {"nul": NUL, "surrogate": SURROGATE}
JSON_VALUES = {"nul": {"k": NUL}, "surrogate": {"k": SURROGATE}, "nul-key": {"k\x00": 1},
               "huge-int": {"k": HUGE_INT}, "1e400": {"k": INFINITE}, "deep": {"k": NESTED}}


@asynccontextmanager
async def on_postgres(serve: Any, settings: Settings, pg_url: str, service: str,
                      stored: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """`service` on PostgreSQL over real HTTP, a client with an admin token, and one
    record already stored (`stored`: the path to post it to, and the record), which bad
    input must leave as it is."""
    settings.database_url = pg_url
    running = await serve(create_app(service, settings))
    token = issue_token(settings, "user:admin", ["*"])
    async with httpx.AsyncClient(base_url=running.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        path, record = stored
        answer = await http.post(path, json=record)
        assert answer.status_code in (201, 202), answer.text
        yield http


def body(value: Any) -> bytes:
    """`value` as JSON text, with the stand-ins above written out."""
    text = json.dumps(value)
    text = text.replace(f'"{INFINITE}"', "1e400")
    return text.replace(f'"{NESTED}"', '{"a": ' * 200 + "1" + "}" * 200).encode()


async def send(http: httpx.AsyncClient, method: str, url: str, value: Any) -> httpx.Response:
    return await http.request(method, url, content=body(value),
                              headers={"content-type": "application/json"})


def assert_refused(response: httpx.Response, field: str, status: int = 422) -> None:
    """A `status` problem document whose errors and detail name `field`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    fields = [error["field"] for error in problem.get("errors", [])]
    assert any(field in f for f in fields), (field, fields)
    assert field in problem["detail"], problem["detail"]
