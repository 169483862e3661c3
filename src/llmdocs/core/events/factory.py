"""Which event bus a process gets: configuration only, one code base."""

from __future__ import annotations

from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events.base import EventBus

REDIS_SCHEMES = ("redis://", "rediss://")


def create_event_bus(settings: Settings, database: Database) -> EventBus:
    """Redis Streams when `events_url` names a Redis server (distributed), else the
    SQL tables of the process's own database (embedded)."""
    if settings.events_url.startswith(REDIS_SCHEMES):
        from llmdocs.core.events.redis import RedisEventBus

        return RedisEventBus(settings.events_url, settings)
    from llmdocs.core.events.sql import SqlEventBus

    return SqlEventBus(database, settings)
