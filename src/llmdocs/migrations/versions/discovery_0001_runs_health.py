"""Discovery-agent: discovery runs, health state and history, watch lease."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "discovery_0001"
down_revision = None
branch_labels = ("discovery",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "discovery_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base_url", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("spec_url", sa.String(2000), nullable=True),
        sa.Column("spec_hash", sa.String(64), nullable=True),
        sa.Column("operation_count", sa.Integer(), nullable=False),
        sa.Column("health", sa.String(20), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_runs"),
    )
    op.create_index("ix_discovery_runs_name_started", "discovery_runs", ["name", "started_at"])
    op.create_table(
        "discovery_health_state",
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("checked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("service", name="pk_discovery_health_state"),
    )
    op.create_table(
        "discovery_health_history",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_health_history"),
    )
    op.create_index("ix_discovery_health_history_service_at", "discovery_health_history",
                    ["service", "at"])
    op.create_table(
        "discovery_leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_discovery_leases"),
    )


def downgrade() -> None:
    for table in ("discovery_leases", "discovery_health_history", "discovery_health_state",
                  "discovery_runs"):
        op.drop_table(table)
