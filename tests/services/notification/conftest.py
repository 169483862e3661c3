"""Fixtures of the notification tests: the real service over HTTP with short retry
waits, a webhook receiver, and a way to publish bus events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.events import make_event
from llmdocs.services import create_app
from services.notification.receiver import Receiver

GUARD = 60.0  # a hang guard, not a performance bound
FAST = {"BACKOFF_SECONDS": "0.05", "BACKOFF_MAX_SECONDS": "0.2", "POLL_SECONDS": "0.05",
        "LEASE_SECONDS": "2", "SEND_TIMEOUT_SECONDS": "1", "MAX_ATTEMPTS": "50",
        "PAUSE_AFTER_FAILURES": "1000"}


@dataclass
class Service:
    app: FastAPI
    url: str
    settings: Settings

    def client(self, subject: str = "user:alice", *scopes: str) -> httpx.AsyncClient:
        token = issue_token(self.settings, subject, scopes or (
            "notifications:read", "notifications:write"))
        return httpx.AsyncClient(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    async def publish(self, type_: str = "llmdocs.document.stored",
                      data: dict[str, Any] | None = None, subject: str | None = "doc-1"
                      ) -> str:
        event = make_event("docstore", type_, data or {"document_id": subject}, subject)
        await self.app.state.resources.events.publish(event)
        return event.id


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Short waits (and any other notification settings given) for the next start."""

    def tune(**overrides: object) -> None:
        for name, value in {**FAST, **{k.upper(): str(v) for k, v in overrides.items()}
                            }.items():
            monkeypatch.setenv(f"LLMDOCS_NOTIFICATION_{name}", value)

    tune()
    return tune


@pytest.fixture
async def start(serve: Any, settings: Settings, fast: Callable[..., None]
                ) -> Callable[..., Awaitable[Service]]:
    async def started(on: Settings | None = None) -> Service:
        on = on or settings
        app = create_app("notification", on)
        return Service(app, str((await serve(app)).url), on)

    return started


@pytest.fixture
async def service(start: Callable[..., Awaitable[Service]]) -> Service:
    return await start()


@pytest.fixture
async def alice(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with service.client() as client:
        yield client


@pytest.fixture
async def receiver(serve: Any) -> AsyncIterator[tuple[Receiver, str]]:
    """The receiver and its hook's URL."""
    hook = Receiver()
    running = await serve(hook.app)
    yield hook, f"{running.url}/hook"
    hook.release.set()


async def until(check: Callable[[], Awaitable[Any]], guard: float = GUARD) -> Any:
    """`check`'s first truthy answer, polled."""
    async with asyncio.timeout(guard):
        while not (answer := await check()):
            await asyncio.sleep(0.05)
        return answer


async def subscribe(client: httpx.AsyncClient, url: str, secret: str,
                    events: tuple[str, ...] = ("llmdocs.document.stored",),
                    **extra: Any) -> dict[str, Any]:
    answer = await client.post("/subscriptions", json={
        "events": list(events),
        "channel": {"kind": "webhook", "url": url, "secret": secret}, **extra})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def deliveries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/deliveries", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found
