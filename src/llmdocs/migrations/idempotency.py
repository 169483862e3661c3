"""The idempotency-key table every service that keeps keys has (core.idempotency's
`KeyRecord`), as its migrations create it: one table per service."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_key_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(36), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_created_at"), name, ["created_at"])


def drop_key_table(name: str) -> None:
    op.drop_table(name)
