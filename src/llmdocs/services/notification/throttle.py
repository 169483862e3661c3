"""The per-channel rate limit: each subscription is sent at most `limit` messages in a
window (a minute by default), counted in the database so replicas share the count. A
replica takes its sends in shares (a tenth of the limit) and spends them without asking
again, so a send rarely costs a write; a share it does not use in its window is lost,
which keeps the rate under the limit, never over it. A delivery over the limit is not
an attempt: it waits for the next window, saying so in its `last_error`, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Database
from llmdocs.services.notification.models import Subscription

UNLIMITED = frozenset({"inbox"})  # our own table: nobody else's limit to respect
SHARE = 10  # a replica takes a tenth of a window's sends at once


class Rate(Base):
    """Sends taken by the replicas for one subscription in one window."""

    __tablename__ = "notification_rates"

    subscription_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
        primary_key=True)
    started: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    sent: Mapped[int] = mapped_column(sa.Integer())
    granted: Mapped[int] = mapped_column(sa.Integer())  # by the latest taking


class Throttle:
    def __init__(self, database: Database, limit: int, window_seconds: int = 60) -> None:
        self.database = database
        self.limit = limit
        self.window = window_seconds
        self.share = max(1, limit // SHARE)
        # the sends this replica holds, by subscription: (window start, how many left)
        self._held: TTLCache[str, tuple[datetime, int]] = TTLCache(
            maxsize=100_000, ttl=window_seconds)

    async def admit(self, subscription: Subscription, now: datetime) -> datetime | None:
        """None when one more message may go now (it is counted); else when the next
        window opens."""
        if subscription.kind in UNLIMITED:
            return None
        start = int(now.timestamp()) // self.window * self.window
        started = datetime.fromtimestamp(start, UTC)
        window, left = self._held.get(subscription.id, (started, 0))
        if window != started:
            left = 0
        if not left:
            left = await self._take(subscription.id, started)
            if not left:
                return started + timedelta(seconds=self.window)
        self._held[subscription.id] = (started, left - 1)
        return None

    async def _take(self, subscription_id: str, started: datetime) -> int:
        """Up to a share of the window's sends, as many as are left of the limit."""
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        first = min(self.share, self.limit)
        over = Rate.sent + self.share > self.limit
        # one statement: SET sees the row as it was, so `granted` is what this took
        take = dialect.insert(Rate).values(
            subscription_id=subscription_id, started=started, sent=first, granted=first
        ).on_conflict_do_update(
            index_elements=["subscription_id", "started"],
            set_={"sent": sa.case((over, self.limit), else_=Rate.sent + self.share),
                  "granted": sa.case((over, self.limit - Rate.sent), else_=self.share)},
            where=Rate.sent < self.limit).returning(Rate.sent, Rate.granted)
        async with self.database.transaction() as session:
            row = (await session.execute(take)).first()
            if row is not None and row.sent == row.granted:  # a new window: the rest are done
                await session.execute(sa.delete(Rate).where(
                    Rate.subscription_id == subscription_id, Rate.started < started))
        return 0 if row is None else int(row.granted)

    def why(self, until: datetime) -> str:
        return (f"rate limited: {self.limit} per {self.window} s to this channel; "
                f"waits until {until:%H:%M:%S} UTC")
