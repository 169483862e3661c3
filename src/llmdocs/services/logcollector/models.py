"""Log-collector tables: log records and events. `seq` orders arrival (live tail,
size retention); the unique `id`/`event_id` makes ingest idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
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


class AuditRecord(Base):
    """One audit record, append-only: `chain_seq` numbers it within its chain (one per
    service) and `hash` covers its fields and `prev_hash`, the hash of the one before."""

    __tablename__ = "logcollector_audit"
    __table_args__ = (
        UniqueConstraint("chain", "chain_seq", name="uq_logcollector_audit_chain_seq"),
        Index("ix_logcollector_audit_time", "time"),
        Index("ix_logcollector_audit_actor_time", "actor", "time"),
        Index("ix_logcollector_audit_resource", "resource_type", "resource_id"),
    )

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    chain: Mapped[str] = mapped_column(String(100))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    roles: Mapped[str] = mapped_column(Text)  # JSON list
    act: Mapped[str] = mapped_column(Text)  # JSON list: the services it passed through
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(200))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    space: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[int] = mapped_column(Integer)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditAnchor(Base):
    """Where a chain starts after retention removed its oldest records: the number and
    hash of the last one removed, so the first one kept still verifies."""

    __tablename__ = "logcollector_audit_anchors"

    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditIdentity(Base):
    """Whom an audit record's pseudonymous actor is: the chained record carries only
    the keyed pseudonym (core.privacy), so erasing a person empties `subject` here alone
    and the chain still verifies. The emptied row stays: a record of theirs arriving
    late (in flight at the erasure) finds it and records no name again."""

    __tablename__ = "logcollector_audit_identities"

    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
