"""The EventBus interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from llmdocs.core.events.envelope import Event

Handler = Callable[[Event], Awaitable[None]]
StartAt = Literal["earliest", "latest"]


@dataclass(frozen=True)
class Delivery:
    """One event handed to one consumer of a group."""

    event: Event
    position: str  # the backend's position of the event in its stream
    group: str
    attempt: int  # 1 on first delivery, then counts redeliveries


class Subscription(abc.ABC):
    """A running consumer loop; `stop()` ends it after the batch in hand."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class EventBus(abc.ABC):
    """Publish never raises: if the backend is unreachable the event is spooled to
    a local file and delivered when the backend is back."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, event: Event, stream: str | None = None) -> None: ...

    @abc.abstractmethod
    async def publish_many(self, events: Sequence[Event], stream: str | None = None) -> None: ...

    @abc.abstractmethod
    async def read(
        self,
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 1000,
        stream: str | None = None,
        start_at: StartAt = "earliest",
    ) -> list[Delivery]:
        """Events for this consumer: first those whose delivery timed out unacked
        (redelivery), then new ones. An event delivered `max_deliveries` times without
        an ack goes to the dead-letter stream instead."""

    @abc.abstractmethod
    async def ack(self, deliveries: Sequence[Delivery], stream: str | None = None) -> None: ...

    @abc.abstractmethod
    async def dead_letters(
        self, group: str, *, limit: int = 100, stream: str | None = None
    ) -> list[Delivery]: ...

    @abc.abstractmethod
    async def replay(
        self, after: str | None = None, *, limit: int = 100, stream: str | None = None
    ) -> list[tuple[str, Event]]:
        """Events in stream order after a position (from the start when None)."""

    @abc.abstractmethod
    async def ping(self) -> float:
        """Round-trip to the backend in milliseconds; raises when unreachable."""

    @abc.abstractmethod
    def subscribe(
        self,
        group: str,
        handler: Handler,
        *,
        consumer: str | None = None,
        types: Sequence[str] | None = None,
        stream: str | None = None,
    ) -> Subscription:
        """Run `handler` for every event of the group (filtered by type); ack on
        success, leave unacked on error so it is redelivered."""
