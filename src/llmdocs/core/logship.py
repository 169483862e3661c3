"""Shipping a service's structured logs through the event bus to the log-collector:
batched, bounded, sampled, and never in the way of a request (a full queue drops)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import zlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from random import random
from typing import Any

import structlog
from prometheus_client import Counter

from llmdocs.core import tracing
from llmdocs.core.config import Settings
from llmdocs.core.events import Event, EventBus
from llmdocs.core.ids import new_id
from llmdocs.core.logging import without_personal_paths
from llmdocs.core.middleware import correlation_id_var

LOGS_SHIPPED = "llmdocs.logs.shipped"  # one event per batch: data.records
BATCH_RECORDS = 200  # a batch is published when this many records wait...
FLUSH_SECONDS = 1.0  # ...or this long after the last one
QUEUE_RECORDS = 10_000  # beyond this the newest records are dropped (and counted)
MAX_MESSAGE_CHARS = 8_192
MAX_VALUE_CHARS = 1_000
# the bus's own logs (publishing, spooling, consuming) would ship themselves in a loop
UNSHIPPED_LOGGERS = ("llmdocs.events", "llmdocs.core.events", __name__)
_KERNEL_FIELDS = ("event", "level", "logger", "timestamp", "correlation_id", "service",
                  "trace_id", "exc_info")
# process-wide, in every app's /metrics: the apps of a process share one shipper
DROPPED = Counter("llmdocs_logs_dropped", "Log records not shipped: the queue was full.",
                  registry=None)
_shipping: ContextVar[bool] = ContextVar("shipping_logs", default=False)
log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return (value if isinstance(value, str) else repr(value))[:MAX_VALUE_CHARS]


def _exc_info(value: Any) -> Any:
    if value is True:
        return sys.exc_info()
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    return value if isinstance(value, tuple) else None


def _stamped(record: dict[str, Any]) -> dict[str, Any]:
    """A queued record with the id that makes its storing idempotent, and its time."""
    created = record.pop("created")
    return {"id": new_id(), "time": datetime.fromtimestamp(created, UTC).isoformat(),
            **record}


# what a shipped record must not carry, as it outlives any erasure (docs/privacy.md):
# the person a privacy request's path names, and a URL's query (search words, filters)
_URL_QUERY = re.compile(r"(https?://[^\s\"?#]+)\?[^\s\"#]*")


def redacted(text: str) -> str:
    """`text` without a privacy request's subject or a URL's query string."""
    text = without_personal_paths(text)
    return _URL_QUERY.sub(r"\1?{query}", text) if "?" in text else text


class LogShipper(logging.Handler):
    """A logging handler that queues records as the log-collector stores them; a task
    on the event loop publishes them in batches. `dropped` counts what did not fit."""

    def __init__(self, bus: EventBus, stream: str, service: str, *, level: str = "INFO",
                 sample: float = 1.0) -> None:
        super().__init__(level.upper())
        self.bus = bus
        self.stream = stream
        self.service = service
        self.sample = sample
        self.dropped = 0
        self.queue: deque[dict[str, Any]] = deque()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name="logship")

    async def stop(self) -> None:
        """Publish what is queued, then end."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._publish_all()

    def _kept(self, record: logging.LogRecord, correlation_id: str | None) -> bool:
        """Warnings and errors always; info and debug at the sampling rate, whole
        requests at a time (by their correlation id) so a kept request is complete."""
        if record.levelno >= logging.WARNING or self.sample >= 1.0:
            return True
        if correlation_id is None:
            return random() < self.sample  # noqa: S311 - sampling, not secrecy  # nosec B311
        return zlib.crc32(correlation_id.encode()) / 2**32 < self.sample

    def emit(self, record: logging.LogRecord) -> None:
        if _shipping.get() or record.name.startswith(UNSHIPPED_LOGGERS):
            return
        try:
            fields = (dict(record.msg) if isinstance(record.msg, dict)
                      else structlog.contextvars.get_contextvars())
            correlation_id = fields.get("correlation_id") or correlation_id_var.get()
            if not self._kept(record, correlation_id):
                return
            if len(self.queue) >= QUEUE_RECORDS:
                self.dropped += 1
                DROPPED.inc()
                return
            self.queue.append(self._shipped(record, fields, correlation_id))
        except Exception:
            self.handleError(record)
            return
        if len(self.queue) >= BATCH_RECORDS:
            if threading.get_ident() == self._loop_thread:
                self._ready.set()
            else:
                self._loop.call_soon_threadsafe(self._ready.set)

    def _shipped(self, record: logging.LogRecord, fields: dict[str, Any],
                 correlation_id: str | None) -> dict[str, Any]:
        """The record as the log-collector's `LogIn` takes it, but for its id and time
        (`created`), which the publishing task fills in, off the request's path."""
        message = (str(fields.get("event", "")) if isinstance(record.msg, dict)
                   else record.getMessage())
        attributes = {k: redacted(v) if isinstance(v := _plain(value), str) else v
                      for k, value in fields.items() if k not in _KERNEL_FIELDS}
        exc_info = _exc_info(fields.get("exc_info")) or record.exc_info
        if exc_info and exc_info[0] is not None:
            attributes["exception"] = logging.Formatter().formatException(exc_info)[-4000:]
        return {"service": str(fields.get("service") or self.service),
                "created": record.created,
                "level": record.levelname.lower(), "logger": record.name[:200],
                "message": redacted(message[:MAX_MESSAGE_CHARS]),
                "correlation_id": correlation_id,
                "trace_id": fields.get("trace_id") or tracing.current_trace_id(),
                "attributes": attributes}

    async def _run(self) -> None:
        _shipping.set(True)  # what publishing logs is not shipped again
        while True:
            try:
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._ready.wait()
            except TimeoutError:
                pass
            self._ready.clear()
            await self._publish_all()

    async def _publish_all(self) -> None:
        token = _shipping.set(True)
        try:
            while self.queue:
                batch = [_stamped(self.queue.popleft())
                         for _ in range(min(BATCH_RECORDS, len(self.queue)))]
                dropped, self.dropped = self.dropped, 0
                await self.bus.publish(Event(
                    source=f"llmdocs/{self.service}", type=LOGS_SHIPPED,
                    data={"records": batch, "dropped": dropped}), self.stream)
        except Exception:  # publishing spools; this is a full disk: the batch is lost
            log.exception("log batch lost")
        finally:
            _shipping.reset(token)


def logs_stream(settings: Settings) -> str:
    """Logs have a stream of their own: the bus's other consumers never read them."""
    return f"{settings.events_stream}.logs"


_running: list[LogShipper] = []  # the process's shipper (one serves all its apps)
_users = 0


@asynccontextmanager
async def shipping_logs(settings: Settings, bus: EventBus, service: str
                        ) -> AsyncIterator[None]:
    """Ship this process's logs while the app runs; apps sharing a process (embedded
    mode) share one shipper, which the first starts and the last stops."""
    global _users
    if settings.log_ship_level == "off":
        yield
        return
    if not _running:
        shipper = LogShipper(bus, logs_stream(settings), service,
                             level=settings.log_ship_level,
                             sample=settings.log_ship_sample)
        shipper.start()
        logging.getLogger().addHandler(shipper)
        _running.append(shipper)
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0:
            shipper = _running.pop()
            logging.getLogger().removeHandler(shipper)
            await shipper.stop()
