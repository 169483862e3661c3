"""Interpreter tables: executions (a request and the run that answers it),
conversation sessions (what a follow-up refers to) and idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, Sealed
from llmdocs.core.idempotency import KeyRecord


class Execution(Base):
    __tablename__ = "interpreter_executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    session_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    user_id: Mapped[str] = mapped_column(String(200))
    space: Mapped[str] = mapped_column(String(63), default="default")
    query: Mapped[str] = mapped_column(Sealed())
    interpretation: Mapped[str] = mapped_column(Sealed())  # JSON
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(Sealed(), nullable=True)  # JSON
    error: Mapped[str | None] = mapped_column(Sealed(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the starting request's: its end, seen later, is announced under it
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Session(Base):
    __tablename__ = "interpreter_sessions"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    last_request: Mapped[str | None] = mapped_column(Sealed(), nullable=True)  # JSON
    last_execution_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(KeyRecord, Base):
    """A request sent with `Idempotency-Key`, and its answer (see core.idempotency)."""

    __tablename__ = "interpreter_idempotency"
