"""A database outage is the dependency's failure, not the caller's nor a crash: every
request answers 503 problem+json with Retry-After until the database is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmdocs.core.config import Settings
from llmdocs.core.errors import PROBLEM_JSON
from llmdocs.devservers import PostgresServer
from services.docstore.conftest import start_store


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which it stops and starts."""
    server = PostgresServer().start()
    yield server
    server.cleanup()


async def test_a_stopped_database_is_503_with_retry_after_never_500(
        serve: Any, settings: Settings, own_postgres: PostgresServer) -> None:
    async for store in start_store(serve, settings, own_postgres.create_database("outage")):
        stored = await store.put("# Kept\n\nwritten before the outage", title="Kept")
        own_postgres.stop()
        # pooled connections the restart dropped, then connections refused
        answers = [await store.http.get(f"/documents/{stored['document_id']}"),
                   await store.http.get("/documents"),
                   await store.http.post("/documents", json={"content": "lost?", "title": "T"}),
                   await store.http.get("/documents")]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith(PROBLEM_JSON)
            assert int(answer.headers["retry-after"]) > 0
            assert "retry" in answer.json()["detail"]
        own_postgres.start()
        back = await store.http.get(f"/documents/{stored['document_id']}")
        assert back.status_code == 200 and back.json()["title"] == "Kept"
