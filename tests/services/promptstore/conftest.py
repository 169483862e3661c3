"""Fixtures of the prompt-store tests: the real service served over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: Settings) -> Headers:
    """Headers with a user token holding the given scopes."""

    def headers(*scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings, 'user:tester', scopes)}"}

    return headers


@pytest.fixture
async def store_url(serve: Any, settings: Settings) -> str:
    """The prompt-store on SQLite, seeded, with its analytics consumer running."""
    settings.http_retries = 1
    return str((await serve(create_app("promptstore", settings))).url)


@pytest.fixture
async def http(store_url: str, auth: Headers) -> AsyncIterator[httpx.AsyncClient]:
    headers = auth("prompts:read", "prompts:write")
    async with httpx.AsyncClient(base_url=store_url + "/api/v1", headers=headers) as client:
        yield client
