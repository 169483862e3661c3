"""The per-channel rate limit: each subscription is sent at most `rate_per_minute`
messages in a minute, counted in the database so replicas share the count. A delivery
over the limit is not an attempt: it waits for the next minute, saying so in its
`last_error`, and is never dropped."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Database
from llmdocs.services.notification.models import Subscription

WINDOW = timedelta(minutes=1)
UNLIMITED = frozenset({"inbox"})  # our own table: nobody else's limit to respect


class Rate(Base):
    """Messages sent to one subscription in one minute."""

    __tablename__ = "notification_rates"

    subscription_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
        primary_key=True)
    minute: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    sent: Mapped[int] = mapped_column(sa.Integer())


class Throttle:
    def __init__(self, database: Database, per_minute: int) -> None:
        self.database = database
        self.per_minute = per_minute

    async def admit(self, subscription: Subscription, now: datetime) -> datetime | None:
        """None when one more message may go now (it is counted); else when the next
        window opens."""
        if subscription.kind in UNLIMITED:
            return None
        subscription_id = subscription.id
        minute = now.replace(second=0, microsecond=0)
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        async with self.database.transaction() as session:
            await session.execute(dialect.insert(Rate).values(
                subscription_id=subscription_id, minute=minute, sent=0
            ).on_conflict_do_nothing())
            counted = await session.execute(
                sa.update(Rate).where(Rate.subscription_id == subscription_id,
                                      Rate.minute == minute, Rate.sent < self.per_minute)
                .values(sent=Rate.sent + 1))
            await session.execute(sa.delete(Rate).where(  # the minutes before are done
                Rate.subscription_id == subscription_id, Rate.minute < minute))
        return None if counted.rowcount else minute + WINDOW  # type: ignore[attr-defined]

    def why(self, until: datetime) -> str:
        return (f"rate limited: {self.per_minute} a minute to this channel; "
                f"waits until {until:%H:%M:%S} UTC")
