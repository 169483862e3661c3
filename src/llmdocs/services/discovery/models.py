"""Discovery-agent tables: every discovery attempt, each watched service's last known
health and the history of its changes, and the lease that picks the one replica that
polls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base


class DiscoveryRun(Base):
    __tablename__ = "discovery_runs"
    __table_args__ = (Index("ix_discovery_runs_name_started", "name", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    base_url: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20))  # registered | unchanged | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[str] = mapped_column(Text)  # JSON list
    spec_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    spec_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operation_count: Mapped[int] = mapped_column(Integer)
    health: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HealthState(Base):
    __tablename__ = "discovery_health_state"

    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HealthChange(Base):
    __tablename__ = "discovery_health_history"
    __table_args__ = (Index("ix_discovery_health_history_service_at", "service", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7: time order
    service: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    __tablename__ = "discovery_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
