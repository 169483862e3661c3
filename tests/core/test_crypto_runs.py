"""Encryption at rest across a query's whole path: real services over HTTP on SQLite,
the model the local fake. The query's sentence is kept in the interpreter's execution,
the orchestrator's run, LangGraph's checkpoints and replayed answers to keyed requests:
with a ring set, it is in none of them, nor in any file but the main database (whose
document metadata and provenance keep it, see README) in plaintext."""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any

import pytest
from pydantic import SecretStr

from ecosystem import start_services, store_spec
from llmdocs.core.config import Settings
from services.interpreter.test_interpreter_input import QUERY, as_user
from services.orchestrator.fakellm import fake_llm, provider_env

SENTENCE = "mind the seventeen violet umbrellas"


async def test_a_querys_sentence_is_sealed_along_its_path(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    ring = json.dumps({"k1": base64.b64encode(b"r" * 32).decode()})
    eco = await start_services(settings.model_copy(update={
        "encryption_keys": SecretStr(ring)}), serve)
    await store_spec(eco)
    async with as_user(eco, "user:alice") as alice:
        done = await alice.post("/execute-query", json={"query": f"{QUERY}; {SENTENCE}"})
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
        got = await alice.get(f"/executions/{done.json()['execution_id']}")
        assert SENTENCE in got.text
    # the orchestrator records the query in the generated document's metadata and
    # provenance, which are not encrypted (README): every other column and every other
    # file must be free of it
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()
             and not p.name.startswith("llmdocs.db")]
    assert any(p.name.endswith("checkpoints.db-wal") for p in files)
    assert [p for p in files if SENTENCE.encode() in p.read_bytes()] == []
    conn = sqlite3.connect(settings.data_dir / "llmdocs.db")
    try:
        allowed = {("docstore_documents", "metadata"), ("docstore_versions", "provenance")}
        seen = set()
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND sql NOT LIKE 'CREATE VIRTUAL%'").fetchall():
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                hits = conn.execute(f'SELECT count(*) FROM "{table}" WHERE '
                                    f'CAST("{column}" AS TEXT) LIKE ?',
                                    (f"%{SENTENCE}%",)).fetchone()[0]
                if hits:
                    seen.add((table, column))
        assert seen <= allowed, seen - allowed
        assert ("interpreter_executions", "query") not in seen
    finally:
        conn.close()
