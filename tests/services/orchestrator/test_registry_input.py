"""Bad input to the registry's writes on PostgreSQL: a NUL or a lone surrogate in any
text or schema of a registration, or in a health reason, is a 422 naming the field (it
was a 500 from the database), and what was registered stays as it was."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from badinput import JSON_VALUES, TEXT, assert_refused, on_postgres, send
from llmdocs.core.config import Settings

REGISTRATION: dict[str, Any] = {
    "name": "svc", "base_url": "http://127.0.0.1:1/", "spec_hash": "a" * 64, "title": "T",
    "operations": [{
        "operation_id": "op", "method": "get", "path": "/x/{id}", "summary": "s",
        "parameters": [{"name": "id", "location": "path", "schema": {"type": "string"}}],
        "request_body": {"schema": {"type": "object"}},
        "responses": {"200": {"description": "ok"}}, "scopes": ["a"]}]}

TEXT_FIELDS = ["api_prefix", "spec_url", "title", "version", "openapi_version", "health_path",
               "operations.0.summary", "operations.0.description", "operations.0.tag",
               "operations.0.resource", "operations.0.scopes.0",
               "operations.0.parameters.0.description",
               "operations.0.request_body.content_type",
               "operations.0.request_body.description"]
JSON_FIELDS = ["operations.0.parameters.0.schema", "operations.0.request_body.schema",
               "operations.0.responses"]


def with_value(path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(REGISTRATION)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = changed
    for part in parents:
        node = node[part]
    node[last] = value
    changed["spec_hash"] = "b" * 64  # a change, not the same registration again
    return changed


@pytest.fixture
async def registry(serve: Any, settings: Settings, pg_url: str
                   ) -> AsyncIterator[httpx.AsyncClient]:
    async with on_postgres(serve, settings, pg_url, "orchestrator",
                           ("/registry/services", REGISTRATION)) as http:
        yield http


@pytest.mark.parametrize("kind", sorted(TEXT))
async def test_registration_text_a_column_cannot_hold_is_a_422(
        registry: httpx.AsyncClient, kind: str) -> None:
    before = (await registry.get("/registry/services/svc")).json()
    for field in TEXT_FIELDS:
        answer = await send(registry, "POST", "/registry/services",
                            with_value(field, TEXT[kind]))
        assert_refused(answer, field)
    assert (await registry.get("/registry/services/svc")).json() == before


async def test_registration_schemas_hold_only_storable_json(
        registry: httpx.AsyncClient) -> None:
    before = (await registry.get("/registry/services/svc")).json()
    for field in JSON_FIELDS:
        for value in JSON_VALUES.values():
            answer = await send(registry, "POST", "/registry/services", with_value(
                field, {"200": value} if field.endswith("responses") else value))
            assert_refused(answer, field)
    assert (await registry.get("/registry/services/svc")).json() == before


@pytest.mark.parametrize("kind", sorted(TEXT))
async def test_a_health_reason_a_column_cannot_hold_is_a_422(
        registry: httpx.AsyncClient, kind: str) -> None:
    ok = await registry.put("/registry/services/svc/health",
                            json={"status": "degraded", "reason": "slow"})
    assert ok.status_code == 200, ok.text
    answer = await send(registry, "PUT", "/registry/services/svc/health",
                        {"status": "healthy", "reason": TEXT[kind]})
    assert_refused(answer, "reason")
    health = (await registry.get("/registry/services/svc")).json()["health"]
    assert (health["status"], health["reason"]) == ("degraded", "slow")


@pytest.mark.parametrize("base_url", [
    "http://127.0.0.1:1/" + "a" * 1000,  # past the column (a 500 on PostgreSQL)
    "http://user:secret@127.0.0.1:1/",  # kept with the registration for all to read
    "http://127.0.0.1:1/?q=1", "http://127.0.0.1:1/#top",  # /health is added to it
])
async def test_a_base_url_the_registry_cannot_keep_or_use_is_a_422(
        registry: httpx.AsyncClient, base_url: str) -> None:
    before = (await registry.get("/registry/services/svc")).json()
    answer = await send(registry, "POST", "/registry/services",
                        with_value("base_url", base_url))
    assert_refused(answer, "base_url")
    assert (await registry.get("/registry/services/svc")).json() == before
