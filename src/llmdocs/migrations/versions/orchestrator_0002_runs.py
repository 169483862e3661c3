"""Orchestrator: workflow runs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0002"
down_revision = "orchestrator_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orchestrator_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("version", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestrator_runs")),
    )
    op.create_index(op.f("ix_orchestrator_runs_workflow"), "orchestrator_runs", ["workflow"])
    op.create_index(op.f("ix_orchestrator_runs_status"), "orchestrator_runs", ["status"])
    op.create_index(op.f("ix_orchestrator_runs_created_at"), "orchestrator_runs",
                    ["created_at"])


def downgrade() -> None:
    op.drop_table("orchestrator_runs")
