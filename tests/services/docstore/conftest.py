"""A real doc-store over HTTP, on SQLite and PostgreSQL, with its blobs in the temp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app


@dataclass
class Store:
    http: httpx.AsyncClient  # authenticated with docs:read and docs:write
    url: str
    settings: Settings
    blobs: Path

    def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings, 'user:t', scopes)}"}

    def blob_files(self) -> list[Path]:
        return [p for p in self.blobs.rglob("*") if p.is_file()] if self.blobs.exists() else []

    async def put(self, content: str, **fields: Any) -> dict[str, Any]:
        answer = await self.http.post("/documents", json={"content": content, **fields})
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body


async def start_store(serve: Any, settings: Settings, database_url: str) -> AsyncIterator[Store]:
    settings.database_url = database_url
    running = await serve(create_app("docstore", settings))
    token = issue_token(settings, "user:t", ["docs:read", "docs:write"])
    async with httpx.AsyncClient(base_url=running.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        yield Store(http, running.url, settings, settings.data_dir / "blobs")


@pytest.fixture
async def store(serve: Any, settings: Settings, database_url: str,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    """The doc-store on both databases, with a small upload limit."""
    monkeypatch.setenv("LLMDOCS_DOCSTORE_MAX_UPLOAD_BYTES", "100000")
    async for handle in start_store(serve, settings, database_url):
        yield handle


@pytest.fixture
async def sqlite_store(serve: Any, settings: Settings, sqlite_url: str,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    """The doc-store on SQLite only, for behaviour that does not depend on the database."""
    monkeypatch.setenv("LLMDOCS_DOCSTORE_MAX_UPLOAD_BYTES", "100000")
    async for handle in start_store(serve, settings, sqlite_url):
        yield handle
