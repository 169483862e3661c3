"""Notification tables: subscriptions (a channel and what it wants), deliveries (one per
notification and subscription: the unit that is retried, dead-lettered and replayed),
their attempts, and each user's in-app inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, SealedPerRow
from llmdocs.core.idempotency import KeyRecord


class Subscription(Base):
    __tablename__ = "notification_subscriptions"
    __table_args__ = (sa.Index("ix_notification_subscriptions_owner", "owner"),
                      sa.Index("ix_notification_subscriptions_status", "status"))

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(200))  # the subject that made it
    space: Mapped[str | None] = mapped_column(sa.String(100))
    events: Mapped[list[str]] = mapped_column(sa.JSON())  # kinds or fnmatch patterns
    filters: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    kind: Mapped[str] = mapped_column(sa.String(20))  # the channel's: webhook | inbox | …
    channel: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # its config, no secrets
    # its secrets, sealed with `Settings.secrets_ring` bound to the id
    sealed: Mapped[str | None] = mapped_column(SealedPerRow())
    status: Mapped[str] = mapped_column(sa.String(10))  # active | paused
    paused_reason: Mapped[str | None] = mapped_column(sa.Text())
    failures: Mapped[int] = mapped_column(sa.Integer())  # failed attempts in a row
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class Delivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # a redelivered event finds the deliveries of its first delivery
        sa.UniqueConstraint("notification_id", "subscription_id",
                            name="uq_notification_deliveries_once"),
        sa.Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_notification_deliveries_subscription", "subscription_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE",
                                     # the convention's name is over PostgreSQL's 63
                                     name="fk_notification_deliveries_subscription"))
    notification_id: Mapped[str] = mapped_column(sa.String(100))  # stable across retries
    kind: Mapped[str] = mapped_column(sa.String(200))  # an event type or an alert's kind
    group_key: Mapped[str | None] = mapped_column(sa.String(300))  # repeats of one alert
    repeats: Mapped[int] = mapped_column(sa.Integer())  # folded into this one by grouping
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # the Notification, capped
    status: Mapped[str] = mapped_column(sa.String(10))  # pending | delivered | dead | grouped
    attempts: Mapped[int] = mapped_column(sa.Integer())  # since created or replayed
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    lease: Mapped[str | None] = mapped_column(sa.String(36))  # the sender holding it
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Attempt(Base):
    __tablename__ = "notification_attempts"

    delivery_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        primary_key=True)
    number: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)  # from 1, all rounds
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(sa.Boolean())
    status_code: Mapped[int | None] = mapped_column(sa.Integer())
    error: Mapped[str | None] = mapped_column(sa.Text())
    duration_ms: Mapped[float] = mapped_column(sa.Float())


class InboxItem(Base):
    __tablename__ = "notification_inbox"
    __table_args__ = (sa.Index("ix_notification_inbox_owner", "owner", "id"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)  # UUIDv7: time order
    owner: Mapped[str] = mapped_column(sa.String(200))
    # one item per delivery, however often it is sent
    delivery_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(200))
    title: Mapped[str] = mapped_column(sa.Text())
    text: Mapped[str] = mapped_column(sa.Text())
    severity: Mapped[str] = mapped_column(sa.String(10))
    link: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class IdempotencyKey(KeyRecord, Base):
    """A creating request sent with `Idempotency-Key`, and its answer."""

    __tablename__ = "notification_idempotency"
