"""The orchestrator's other creating POSTs take an Idempotency-Key as a run's start
does: a registration and an agent run sent again with the same key and body answer
as the first time (the same agent run, not a second); another body is a 422. SQLite
and PostgreSQL, over HTTP; the model the local fake."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ecosystem import token
from keyed import created_once
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.orchestrator.fakellm import fake_llm, provider_env
from services.orchestrator.test_registry import registration


async def test_a_registration_and_an_agent_run_happen_once_per_key(
        settings: Settings, serve: Any, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"database_url": database_url})
    for key in ("gateway", "orchestrator"):
        await serve(create_app(key, eco), port=eco.port_for(key))
    async with httpx.AsyncClient(base_url=eco.url_for("orchestrator"), timeout=60,
                                 headers={"Authorization": f"Bearer {token(eco)}"}) as http:
        first = registration("1" * 64, "/docs").model_dump(mode="json", by_alias=True)
        registered = await created_once(
            http, "/registry/services", first,
            registration("2" * 64, "/docs").model_dump(mode="json", by_alias=True),
            "/registry/services")
        assert registered["created"]
        goal = {"goal": "List the registered services.", "max_steps": 1}
        await created_once(http, "/workflows/agent/runs", goal,
                           {**goal, "max_steps": 2}, "/registry/services")
