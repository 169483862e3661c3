"""The gateway's tables: one usage row per call, budgets (the counter that records
spend is the one that enforces the limit), and rate limits. Money is integer micro-USD
so that concurrent additions stay exact."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, utcnow
from llmdocs.core.ids import new_id


class UsageRecord(Base):
    __tablename__ = "gateway_usage"
    __table_args__ = (Index("ix_gateway_usage_day_user", "day", "user_id"),
                      Index("ix_gateway_usage_created_at", "created_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    day: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    cached: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Budget(Base):
    __tablename__ = "gateway_budgets"

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)  # user | key
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit_micros: Mapped[int] = mapped_column(BigInteger)
    spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    period: Mapped[str] = mapped_column(String(10), default="total",
                                        server_default="total")  # daily | monthly
    # the window spent/reserved count in (a UTC day, a month, "total"); a reservation
    # in a later window starts the counter again
    period_key: Mapped[str] = mapped_column(String(10), default="total",
                                            server_default="total")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateLimit(Base):
    __tablename__ = "gateway_limits"

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
