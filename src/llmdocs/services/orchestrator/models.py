"""Orchestrator tables. The registry: one row per known service, with its analysed
capabilities (JSON) and the health the discovery-agent last reported."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base


class RegisteredService(Base):
    __tablename__ = "orchestrator_services"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(1000))
    api_prefix: Mapped[str] = mapped_column(String(500))
    spec_url: Mapped[str] = mapped_column(String(2000))
    spec_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    version: Mapped[str] = mapped_column(String(100))
    openapi_version: Mapped[str] = mapped_column(String(20))
    auth: Mapped[str] = mapped_column(String(20))
    health_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    operations: Mapped[str] = mapped_column(Text)  # list[Operation] as JSON
    operation_count: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    health_status: Mapped[str] = mapped_column(String(20))
    health_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    health_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)
    health_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)
