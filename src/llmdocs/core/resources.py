"""The shared resources of a service process: database, event bus, cache. In embedded
mode one set serves all eight apps; in distributed mode each process opens its own."""

from __future__ import annotations

from dataclasses import dataclass

from llmdocs.core.cache import Cache
from llmdocs.core.config import Settings
from llmdocs.core.db import Base, Database, SchemaUpgrade
from llmdocs.core.events import EventBus
from llmdocs.core.events.factory import create_event_bus


@dataclass
class Resources:
    settings: Settings
    database: Database
    events: EventBus
    cache: Cache

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str = "llmdocs") -> Resources:
        database = Database.from_settings(settings)
        return cls(settings=settings, database=database,
                   events=create_event_bus(settings, database),
                   cache=Cache.from_settings(settings, namespace))

    async def open(self, upgrade: SchemaUpgrade) -> None:
        """Migrate the schema, then start the bus and the cache."""
        await self.database.migrate(upgrade)
        await self.database.check_keys(Base.metadata)
        await self.events.start()
        await self.cache.start()

    async def close(self) -> None:
        await self.cache.close()
        await self.events.close()
        await self.database.dispose()
