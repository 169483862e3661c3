"""The agent workflow with the real local model (SmolLM2 through the llm-gateway): the
model picks a tool from the catalog the discovery-agent built, the tool makes a real
HTTP call, and the model answers from its result."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.discovery.client import DiscoveryClient
from llmdocs.services.orchestrator.client import OrchestratorClient

LIST_SERVICES = "orchestrator__list_services_registry_services_get"


@pytest.fixture
async def ecosystem(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                    ) -> Settings:
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    for key in ("gateway", "orchestrator", "discovery"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    return eco


async def test_agent_chooses_and_calls_a_tool(ecosystem: Settings) -> None:
    token = issue_token(ecosystem, "user:t", ["*"])
    async with DiscoveryClient.for_service(ecosystem, token=token) as d:
        assert (await d.discover("orchestrator", ecosystem.url_for("orchestrator"))
                ).status == "registered"
    async with OrchestratorClient.for_service(ecosystem, token=token) as o:
        o.http.timeout = httpx.Timeout(300.0)  # a hang guard for a slow CPU model
        run = await o.run_agent("List the registered services.", max_steps=2)

    assert run.status == "completed"
    assert run.offered_tools[0] == LIST_SERVICES  # the catalog's best match for the goal
    catalog = set(run.offered_tools)
    assert 1 <= len(run.steps) <= 2
    for step in run.steps:
        assert step.tool in catalog
        assert step.result["tool"] == step.tool and isinstance(step.result["status"], int)
        assert "body" in step.result  # a real HTTP answer, not a refused call
    assert run.answer

    database = Database(ecosystem.database_url)
    try:
        events = [e for _, e in await create_event_bus(ecosystem, database).replay(limit=500)
                  if e.type == "llmdocs.workflow.completed"]
    finally:
        await database.dispose()
    assert [e.data["run_id"] for e in events] == [run.id]
    assert events[0].data["tools"] == [step.tool for step in run.steps]


async def test_agent_refuses_bad_goals_and_an_empty_catalog(ecosystem: Settings) -> None:
    token = issue_token(ecosystem, "user:t", ["workflows:write"])
    async with httpx.AsyncClient(base_url=ecosystem.url_for("orchestrator"),
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        bad = await http.post("/workflows/agent/runs", json={"goal": "", "max_steps": 99})
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"body.goal", "body.max_steps"}
        empty = await http.post("/workflows/agent/runs", json={"goal": "list services"})
        assert empty.status_code == 409 and "discover" in empty.json()["detail"]
