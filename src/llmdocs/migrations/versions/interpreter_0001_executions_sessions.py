"""Interpreter: executions and sessions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "interpreter_0001"
down_revision = None
branch_labels = ("interpreter",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interpreter_executions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(100), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("interpretation", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interpreter_executions")),
    )
    op.create_index(op.f("ix_interpreter_executions_run_id"), "interpreter_executions",
                    ["run_id"])
    op.create_table(
        "interpreter_sessions",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("last_request", sa.Text(), nullable=True),
        sa.Column("last_execution_id", sa.String(36), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interpreter_sessions")),
    )


def downgrade() -> None:
    op.drop_table("interpreter_sessions")
    op.drop_table("interpreter_executions")
