"""Shared fixtures: real PostgreSQL and Redis servers for the session, a fresh database
and Redis db per test, and the two storage backends as one parameter."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from ecosystem import start_services
from llmdocs.core.config import Settings
from llmdocs.devservers import PostgresServer, RedisServer, free_port
from llmdocs.runtime import Server

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_session_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.create_database(f"t{next(_counter)}")


@pytest.fixture
async def redis_url(redis_session_server: RedisServer) -> AsyncIterator[str]:
    """The session's Redis, flushed before each test."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_session_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_session_server.url


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and start."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's `llmdocs up` records itself here, never in the user's own state dir."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'llmdocs.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'llmdocs.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded settings isolated in the test's temp dir (no .env from the checkout)."""
    monkeypatch.chdir(tmp_path)
    return Settings(data_dir=tmp_path / ".llmdocs", jwt_secret=SecretStr("test-" + "x" * 40),
                    log_format="console")


class RunningApp:
    def __init__(self, server: Server, task: asyncio.Task[None], port: int) -> None:
        self.server = server
        self.task = task
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RunningApp]]]:
    """Serve an ASGI app over real HTTP on loopback for the test's duration."""
    running: list[RunningApp] = []

    async def start(app: Any, port: int | None = None) -> RunningApp:
        port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                lifespan="on", access_log=False)
        server = Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        app_handle = RunningApp(server, task, port)
        running.append(app_handle)
        return app_handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.stop()


@pytest.fixture
async def eco(settings: Settings, serve: Any) -> Settings:
    """Settings of an ecosystem whose needed services all answer over HTTP."""
    return await start_services(settings, serve)
