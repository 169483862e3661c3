"""An execution's end is kept once: a poll whose read of the run came before the end,
written after the end was kept (by the bus or another poll), leaves the execution
finished, and the next poll neither changes nor announces anything. Real services
over HTTP on SQLite and PostgreSQL, the model the local fake."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from ecosystem import start_services, store_spec
from llmdocs.core.config import Settings
from llmdocs.services.interpreter.service import Interpreter
from services.interpreter.test_interpreter_input import QUERY, as_user
from services.orchestrator.fakellm import fake_llm, provider_env


async def test_a_poll_that_read_the_run_before_its_end_does_not_undo_it(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    apps: list[FastAPI] = []

    async def keep(app: FastAPI, port: int | None = None) -> Any:
        apps.append(app)
        return await serve(app, port=port)

    eco = await start_services(settings.model_copy(update={"database_url": database_url}),
                               keep)
    await store_spec(eco)
    [interpreter] = [a.state.interpreter for a in apps if hasattr(a.state, "interpreter")]
    assert isinstance(interpreter, Interpreter)

    async with as_user(eco, "user:alice") as alice:
        done = await alice.post("/execute-query", json={"query": QUERY})
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
        execution_id = done.json()["execution_id"]
        row = await interpreter._execution_row(execution_id)
        ended = await interpreter.orchestrator.run(row.run_id)
        before_end = ended.model_copy(update={"status": "running", "finished_at": None})
        # the late poll answers what it read, but the record keeps the end
        assert (await interpreter._sync(row, before_end)).status == "running"
        assert (await interpreter._execution_row(execution_id)).status == "completed"

        polled = await alice.get(f"/executions/{execution_id}")
        assert polled.json()["status"] == "completed"
    announced = [e.type for _, e in await interpreter.events.replay(limit=10_000)
                 if e.subject == execution_id]
    assert announced == ["llmdocs.execution.accepted", "llmdocs.execution.completed"]
