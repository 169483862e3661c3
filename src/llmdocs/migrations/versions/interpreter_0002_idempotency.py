"""Interpreter: idempotency keys of POST /execute-query, each with its first answer."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "interpreter_0002"
down_revision = "interpreter_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interpreter_idempotency",
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(36), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_interpreter_idempotency")),
    )
    op.create_index(op.f("ix_interpreter_idempotency_created_at"), "interpreter_idempotency",
                    ["created_at"])


def downgrade() -> None:
    op.drop_table("interpreter_idempotency")
