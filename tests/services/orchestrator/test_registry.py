"""The registry and the health watch's lease on SQLite and PostgreSQL, and the
discovery-agent finding the ecosystem by itself at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import SERVICE_SCOPES, Principal
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.devservers import free_port
from llmdocs.migrations import upgrade
from llmdocs.openapi import Operation
from llmdocs.services import create_app
from llmdocs.services.discovery.service import DiscoveryService
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.errors import Unknown
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import HealthUpdate, ServiceRegistration

GUARD = 60.0  # a hang guard, not a performance bound
AGENT = Principal("service:discovery", frozenset(SERVICE_SCOPES))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.migrate(upgrade)
    yield db
    await db.dispose()


def registration(spec_hash: str, *paths: str) -> ServiceRegistration:
    return ServiceRegistration(
        name="docs-api", base_url="http://127.0.0.1:1/",
        spec_hash=spec_hash, title="Docs", operations=[
            Operation(operation_id=f"op{i}", method="get", path=path, tag="docs",
                      resource=path.strip("/").split("/")[0]) for i, path in enumerate(paths)])


async def test_registry_is_idempotent_and_tracks_health(database: Database,
                                                        settings: Settings) -> None:
    bus = create_event_bus(settings, database)
    await bus.start()
    try:
        registry = Registry(database, bus)
        created = await registry.register(registration("a" * 64, "/docs", "/docs/{id}"), AGENT)
        assert (created.created, created.changed) == (True, True)
        same = await registry.register(registration("a" * 64, "/docs", "/docs/{id}"), AGENT)
        assert (same.created, same.changed) == (False, False)
        changed = await registry.register(registration("b" * 64, "/docs", "/tags"), AGENT)
        assert (changed.created, changed.changed) == (False, True)
        detail = await registry.get("docs-api")
        assert detail.base_url == "http://127.0.0.1:1" and detail.spec_hash == "b" * 64
        assert detail.groups == {"docs": {"docs": ["op0"], "tags": ["op1"]}}
        assert detail.health.status == "unknown"

        first = await registry.set_health("docs-api", HealthUpdate(status="healthy"), AGENT)
        again = await registry.set_health("docs-api", HealthUpdate(status="healthy"), AGENT)
        assert first.changed_at == again.changed_at and again.checked_at is not None
        assert again.changed_at is not None and again.changed_at.utcoffset() is not None
        down = await registry.set_health("docs-api", HealthUpdate(status="unreachable",
                                                                   reason="refused"), AGENT)
        assert down.changed_at != first.changed_at
        eco = await registry.ecosystem()
        assert (eco.status, eco.counts) == ("unhealthy", {"unreachable": 1})

        with pytest.raises(Unknown):
            await registry.set_health("nope", HealthUpdate(status="healthy"), AGENT)
        await registry.remove("docs-api", AGENT)
        assert (await registry.ecosystem()).status == "unknown"
        events = [e for _, e in await bus.replay(limit=100)
                  if e.type == "llmdocs.service.registered"]
        assert [e.data["spec_hash"] for e in events] == ["a" * 64, "b" * 64]
    finally:
        await bus.close()


async def test_one_replica_leads_the_health_watch(database: Database,
                                                  settings: Settings) -> None:
    bus = create_event_bus(settings, database)
    bounds = DiscoverySettings(watch_interval_seconds=30)
    async with httpx.AsyncClient() as http, \
            OrchestratorClient("http://127.0.0.1:1") as registry:
        first, second = (DiscoveryService(settings, bounds, database, bus, registry, http)
                         for _ in range(2))
        leads = await asyncio.gather(first._lead(), second._lead())
        assert sorted(leads) == [False, True]
        leader, other = (first, second) if leads[0] else (second, first)
        assert await leader._lead() and not await other._lead()  # renewed, still held


async def test_discovery_finds_the_ecosystem_at_start(
    settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    # the agent starts before the registry it reports to; it retries what it cannot reach
    await serve(create_app("discovery", eco), port=eco.port_for("discovery"))
    await serve(create_app("orchestrator", eco), port=eco.port_for("orchestrator"))
    async with OrchestratorClient.for_service(eco, caller="test") as registry:
        async with asyncio.timeout(GUARD):
            while {s.name for s in await registry.list_services()} != {
                    "orchestrator", "discovery-agent"}:
                await asyncio.sleep(0.2)
