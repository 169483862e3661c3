"""Tables of the SQL event bus. The events table is an append-only log whose integer
position orders each stream; a consumer group is a cursor (the last position handed
out) plus the deliveries it has not acked yet."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid
Position = BigInteger().with_variant(Integer(), "sqlite")


class EventRecord(Base):
    """One published event. AUTOINCREMENT on SQLite: positions are never reused."""

    __tablename__ = "eventbus_events"
    __table_args__ = (
        Index("ix_eventbus_events_stream_position", "stream", "position"),
        {"sqlite_autoincrement": True},
    )

    position: Mapped[int] = mapped_column(Position, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    stream: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    envelope: Mapped[str] = mapped_column(Text)  # the CloudEvents envelope as JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GroupCursor(Base):
    """How far a consumer group has been handed events of a stream."""

    __tablename__ = "eventbus_cursors"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Position)


class PendingDelivery(Base):
    """An event handed to a consumer of a group and not acked yet."""

    __tablename__ = "eventbus_pending"
    __table_args__ = (
        Index("ix_eventbus_pending_due", "group_name", "stream", "delivered_at"),
    )

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(
        Position, ForeignKey("eventbus_events.position", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(200))
    consumer: Mapped[str] = mapped_column(String(200))
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)


class DeadLetter(Base):
    """An event a group gave up on after `event_max_deliveries` unacked deliveries."""

    __tablename__ = "eventbus_dead_letters"
    __table_args__ = (
        Index("ix_eventbus_dead_letters_group", "group_name", "stream", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Position, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(
        Position, ForeignKey("eventbus_events.position", ondelete="CASCADE")
    )
    consumer: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer)
    dead_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
