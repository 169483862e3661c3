"""The write step's model calls go out together, at most `write_concurrency` at a time:
the fake model (a local server speaking the OpenAI wire format) counts how many it
answers at once."""

from __future__ import annotations

from typing import Any

import pytest

from ecosystem import start_services, store_spec, token
from llmdocs.core.config import Settings
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import fake_llm, provider_env


async def test_sections_are_written_concurrently_within_the_bound(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_llm(0.3)
    fake = await serve(model)
    for key, value in provider_env(fake.url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLMDOCS_WORKFLOW_WRITE_CONCURRENCY", "2")
    eco = await start_services(settings, serve)
    await store_spec(eco)
    async with OrchestratorClient.for_service(eco, token=token(eco)) as orchestrator:
        run = await orchestrator.start_run("document-generation", {
            "query": "Create API documentation for user service",
            "service": "user service"}, wait=120)
    assert run.status == "completed", run.error
    assert run.result is not None
    calls = [c for c in run.result["provenance"]["llm_calls"] if c["step"] == "write"]
    assert len(calls) > 2  # more calls than the bound lets out at once
    assert model.state.peak == 2
