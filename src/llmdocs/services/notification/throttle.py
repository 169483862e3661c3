"""The per-channel rate limit: each subscription is sent at most `limit` messages in a
window (a minute by default), counted in the database so replicas share the count. A
delivery over the limit is not an attempt: it waits for the next window, saying so in
its `last_error`, and is never dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Database
from llmdocs.services.notification.models import Subscription

UNLIMITED = frozenset({"inbox"})  # our own table: nobody else's limit to respect


class Rate(Base):
    """Messages sent to one subscription in one window."""

    __tablename__ = "notification_rates"

    subscription_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
        primary_key=True)
    started: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    sent: Mapped[int] = mapped_column(sa.Integer())


class Throttle:
    def __init__(self, database: Database, limit: int, window_seconds: int = 60) -> None:
        self.database = database
        self.limit = limit
        self.window = window_seconds

    async def admit(self, subscription: Subscription, now: datetime) -> datetime | None:
        """None when one more message may go now (it is counted); else when the next
        window opens."""
        if subscription.kind in UNLIMITED:
            return None
        subscription_id = subscription.id
        start = int(now.timestamp()) // self.window * self.window
        started = datetime.fromtimestamp(start, UTC)
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        insert = dialect.insert(Rate).values(subscription_id=subscription_id,
                                             started=started, sent=1)
        # one statement: count this send unless the window is full (no row comes back)
        count = insert.on_conflict_do_update(
            index_elements=["subscription_id", "started"], set_={"sent": Rate.sent + 1},
            where=Rate.sent < self.limit).returning(Rate.sent)
        async with self.database.transaction() as session:
            sent = (await session.execute(count)).scalar_one_or_none()
            if sent == 1:  # a new window: the ones before it are done
                await session.execute(sa.delete(Rate).where(
                    Rate.subscription_id == subscription_id, Rate.started < started))
        if sent is not None:
            return None
        return started + timedelta(seconds=self.window)

    def why(self, until: datetime) -> str:
        return (f"rate limited: {self.limit} per {self.window} s to this channel; "
                f"waits until {until:%H:%M:%S} UTC")
