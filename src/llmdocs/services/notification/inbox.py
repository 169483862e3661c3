"""Each user's in-app inbox: items written by the inbox channel, listed, marked read and
followed (SSE). Followers wake at once on their replica's writes and poll for the
others', so any replica's stream sees every item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from llmdocs.core.db import Database, utcnow
from llmdocs.core.ids import new_id
from llmdocs.services.notification.models import InboxItem
from llmdocs.services.notification.schemas import InboxItemOut


class Inbox:
    def __init__(self, database: Database, poll_seconds: float) -> None:
        self.database = database
        self.poll_seconds = poll_seconds
        self._changed: dict[str, asyncio.Event] = {}

    async def put(self, owner: str, delivery_id: str, notification: dict[str, Any],
                  repeats: int) -> None:
        """One item per delivery: a resend after a crash finds it there."""
        # a grouped alert's summary says how often in its title ("…, 14 times in 5 minutes")
        title = notification.get("title") or notification.get("type") or ""
        try:
            async with self.database.transaction() as session:
                session.add(InboxItem(
                    id=new_id(), owner=owner, delivery_id=delivery_id,
                    kind=str(notification.get("type", "")), title=str(title),
                    text=str(notification.get("text", "")),
                    severity=str(notification.get("severity", "info")),
                    link=notification.get("link"), created_at=utcnow(), read_at=None))
        except IntegrityError:
            return  # delivered before
        if (waiting := self._changed.get(owner)) is not None:
            waiting.set()

    async def items(self, owner: str, *, unread: bool = False, after: str | None = None,
                    limit: int = 50) -> list[InboxItemOut]:
        """Newest first; `after` (an item id) gives those newer than it, oldest first."""
        query = sa.select(InboxItem).where(InboxItem.owner == owner)
        if unread:
            query = query.where(InboxItem.read_at.is_(None))
        if after is not None:
            query = query.where(InboxItem.id > after).order_by(InboxItem.id)
        else:
            query = query.order_by(InboxItem.id.desc())
        async with self.database.transaction() as session:
            rows = (await session.scalars(query.limit(limit))).all()
        return [InboxItemOut.model_validate(row, from_attributes=True) for row in rows]

    async def unread(self, owner: str) -> int:
        async with self.database.transaction() as session:
            count = await session.scalar(sa.select(sa.func.count()).select_from(InboxItem)
                                         .where(InboxItem.owner == owner,
                                                InboxItem.read_at.is_(None)))
        return int(count or 0)

    async def mark_read(self, owner: str, ids: Sequence[str] | None) -> int:
        """Mark the owner's items (all unread ones when `ids` is None); how many changed."""
        update = (sa.update(InboxItem)
                  .where(InboxItem.owner == owner, InboxItem.read_at.is_(None))
                  .values(read_at=utcnow()))
        if ids is not None:
            update = update.where(InboxItem.id.in_(list(ids)))
        async with self.database.transaction() as session:
            result = await session.execute(update)
        return int(getattr(result, "rowcount", 0) or 0)

    async def follow(self, owner: str, after: str | None) -> AsyncIterator[InboxItemOut]:
        """The owner's unread items newer than `after` (all unread ones when None),
        oldest first, then each new one as it comes: nothing falls between a client's
        connecting and its first item."""
        after = after or ""
        waiting = self._changed.setdefault(owner, asyncio.Event())
        while True:
            waiting.clear()
            for item in await self.items(owner, unread=True, after=after, limit=100):
                after = item.id
                yield item
            with suppress(TimeoutError):  # then another replica's items: poll
                await asyncio.wait_for(waiting.wait(), self.poll_seconds)
