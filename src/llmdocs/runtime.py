"""Running services: `up` (all eight in one process) and `serve` (one per process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
import uvicorn
from fastapi import FastAPI

from llmdocs.core.client import local_apps
from llmdocs.core.config import Settings
from llmdocs.core.logging import configure_logging, log_formatter
from llmdocs.core.resources import Resources
from llmdocs.core.service import ServiceSpec
from llmdocs.core.tls import MutualTLSProtocol, files_for, server_context
from llmdocs.services import HOOKS, create_app, resolve

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Requests allocate in bursts (a bulk import: thousands of models per batch); collecting
# every 700 allocations, the default, spent a third of the doc-store's import time in GC.
GC_YOUNG_THRESHOLD = 50_000


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop where it is installed (uvicorn[standard] brings it), the loop
    `uvicorn app:app` picks: measured in instructions, it costs a document's orchestration
    6 % less than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # no uvloop for Windows
        return asyncio.run(main)
    return uvloop.run(main)


def configure_up_logging(level: str, fmt: str, log_file: Path | None) -> None:
    """Console logs are for a person: a line per request (and per migration) floods them
    and buries what `up` prints, so those show only at DEBUG; JSON logs keep every line,
    and so does `log_file`."""
    configure_logging(level, fmt)
    root = logging.getLogger()
    if fmt == "console" and logging.getLevelName(level.upper()) > logging.DEBUG:
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.addFilter(not_a_request_line)
    if log_file is not None:
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(log_formatter("json"))
        root.addHandler(to_file)


def not_a_request_line(record: logging.LogRecord) -> bool:
    """False for a line per request, served (our request log) or made (httpx's), and for
    the migrations' progress; warnings and errors pass."""
    return record.levelno >= logging.WARNING or not record.name.startswith(
        ("llmdocs.http", "httpx", "alembic."))


class Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever runs it (the runtime, a
    test run), so one Ctrl-C stops every server of the process. uvicorn's own swaps the
    process's handlers in and out per server: servers stopped in another order than
    they started leave a dead server's handler in place, which swallows Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: FastAPI, host: str, port: int, settings: Settings, key: str
                  ) -> uvicorn.Config:
    """How service `key` is served: with TLS configured, HTTPS only, every client
    presenting a certificate of the CA (a browser-facing one: when it has one), the files
    reloaded once rotated."""
    files = files_for(settings, key)
    browsers = resolve(key).browsers
    tls: dict[str, Any] = {} if files is None else {
        "http": MutualTLSProtocol,
        "ssl_context_factory": lambda _config, _default: server_context(files,
                                                                         browsers=browsers)}
    # no log_level: our logging setup owns uvicorn's loggers (see core.logging)
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                          lifespan="on", timeout_graceful_shutdown=10, **tls)


async def _serve_all(servers: list[Server], on_started: Callable[[], object],
                     stop_when: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop_when` is set); call `on_started` once every
    server listens."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    async def stop_on_request(event: asyncio.Event) -> None:
        await event.wait()
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    watcher = asyncio.create_task(stop_on_request(stop_when)) if stop_when else None
    serving = [asyncio.create_task(_serve_one(server)) for server in servers]
    try:
        # uvicorn tells readiness only through the `started` flag
        while not all(s.started for s in servers) and not any(  # noqa: ASYNC110
                t.done() for t in serving):
            await asyncio.sleep(0.05)
        if not any(t.done() for t in serving):
            _settle_heap()
            on_started()
        await asyncio.gather(*serving)
    except BaseException:
        stop()  # one server could not start (or failed): the others stop too
        await asyncio.gather(*serving, return_exceptions=True)
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class StartupError(RuntimeError):
    """A service could not start serving."""


async def _serve_one(server: Server) -> None:
    """Serve; a server that cannot start (its port taken) raises instead of exiting the
    process the way uvicorn does, so the others stop and the cause is told."""
    try:
        await server.serve()
    except SystemExit:
        config = server.config
        raise StartupError(f"could not serve on {config.host}:{config.port} "
                           "(is the port taken?)") from None


def _settle_heap() -> None:
    """Once every app is built, move what lives for the whole process (modules, apps,
    table metadata) out of the collector's view, so collections scan only what requests
    made."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def up(
    settings: Settings,
    specs: Sequence[ServiceSpec],
    on_ready: Callable[[], object] = lambda: None,
    stop_when: asyncio.Event | None = None,
) -> None:
    """All services in this process, each on its own port, sharing one set of resources;
    an embedding program (a benchmark) stops them cleanly by setting `stop_when`."""
    resources = Resources.from_settings(settings)
    await resources.open(HOOKS.upgrade)
    servers: list[Server] = []
    try:
        for spec in specs:
            app = create_app(spec.key, settings, resources)
            local_apps[spec.key] = app
            servers.append(Server(server_config(app, settings.host,
                                                settings.port_for(spec.key), settings, spec.key)))
        await _serve_all(servers, on_ready, stop_when)
    finally:
        for spec in specs:
            local_apps.pop(spec.key, None)
        await resources.close()


async def serve(settings: Settings, name: str, host: str | None, port: int | None) -> None:
    """One service in this process; it opens its own resources."""
    spec = resolve(name)
    app = create_app(spec.key, settings)
    host, port = host or settings.host, port or settings.port_for(spec.key)
    server = Server(server_config(app, host, port, settings, spec.key))
    scheme = "https" if settings.tls else "http"
    await _serve_all([server], lambda: log.info(
        "serving", service=spec.name, url=f"{scheme}://{host}:{port}",
        mode="embedded" if settings.embedded else "distributed"))
