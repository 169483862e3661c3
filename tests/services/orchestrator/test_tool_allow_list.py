"""The registry's allow-list of operations offered as MCP tools, on SQLite and
PostgreSQL through the migration: read-only by default, replaced when a registration
names one, kept when it does not, and refused when it names no operation of the spec."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmdocs.core.auth import SERVICE_SCOPES, Principal
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.migrations import upgrade
from llmdocs.openapi import Operation
from llmdocs.services.orchestrator.errors import Invalid
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import ServiceRegistration

AGENT = Principal("service:discovery", frozenset(SERVICE_SCOPES))
OPERATIONS = [Operation(operation_id=op, method=method, path=f"/{op}")
              for op, method in (("read", "get"), ("peek", "head"), ("make", "post"),
                                 ("drop", "delete"))]


@pytest.fixture
async def registry(database_url: str, settings: Settings) -> AsyncIterator[Registry]:
    database = Database(database_url)
    await database.migrate(upgrade)
    bus = create_event_bus(settings, database)
    await bus.start()
    try:
        yield Registry(database, bus)
    finally:
        await bus.close()
        await database.dispose()


def registration(spec_hash: str = "a" * 64, tools: list[str] | None = None
                 ) -> ServiceRegistration:
    return ServiceRegistration(name="shop", base_url="http://127.0.0.1:1/",
                               spec_hash=spec_hash, operations=OPERATIONS,
                               tool_operations=tools)


async def test_the_allow_list_is_read_only_by_default_and_set_by_a_registration(
        registry: Registry) -> None:
    await registry.register(registration(), AGENT)
    assert (await registry.get("shop")).tool_operations == ["read", "peek"]

    changed = await registry.register(registration(tools=["make", "read"]), AGENT)
    assert changed.changed  # the same spec with another list is a change
    assert (await registry.get("shop")).tool_operations == ["read", "make"]  # spec order

    kept = await registry.register(registration("b" * 64), AGENT)  # a new spec, no list
    assert kept.changed
    assert (await registry.get("shop")).tool_operations == ["read", "make"]

    await registry.register(registration(tools=[]), AGENT)
    assert (await registry.get("shop")).tool_operations == []


async def test_an_allow_list_naming_no_operation_is_refused(registry: Registry) -> None:
    with pytest.raises(Invalid) as refused:
        await registry.register(registration(tools=["read", "truncate"]), AGENT)
    assert [e["field"] for e in refused.value.errors or ()] == ["tool_operations"]
    assert "truncate" in refused.value.detail and "read," not in refused.value.detail
