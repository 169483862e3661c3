"""Log-collector tables: log records and events. `seq` orders arrival (live tail,
size retention); the unique `id`/`event_id` makes ingest idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid
Seq = BigInteger().with_variant(Integer(), "sqlite")


class CollectedLog(Base):
    __tablename__ = "logcollector_logs"
    __table_args__ = (
        Index("ix_logcollector_logs_time", "time"),
        Index("ix_logcollector_logs_service_time", "service", "time"),
        Index("ix_logcollector_logs_correlation_time", "correlation_id", "time"),
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    logger: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attributes: Mapped[str] = mapped_column(Text)  # JSON object
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CollectedEvent(Base):
    __tablename__ = "logcollector_events"
    __table_args__ = (
        Index("ix_logcollector_events_time", "time"),
        Index("ix_logcollector_events_type_time", "type", "time"),
        Index("ix_logcollector_events_service_time", "service", "time"),
        Index("ix_logcollector_events_correlation_time", "correlation_id", "time"),
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # its `space` extension: only members of that space see it; none, anyone may
    space: Mapped[str | None] = mapped_column(String(63), nullable=True)
    envelope: Mapped[str] = mapped_column(Text)  # the CloudEvents envelope as JSON
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
