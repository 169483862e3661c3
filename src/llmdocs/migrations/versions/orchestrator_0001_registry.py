"""Orchestrator: the service registry."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0001"
down_revision = None
branch_labels = ("orchestrator",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orchestrator_services",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base_url", sa.String(1000), nullable=False),
        sa.Column("api_prefix", sa.String(500), nullable=False),
        sa.Column("spec_url", sa.String(2000), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("openapi_version", sa.String(20), nullable=False),
        sa.Column("auth", sa.String(20), nullable=False),
        sa.Column("health_path", sa.String(500), nullable=True),
        sa.Column("operations", sa.Text(), nullable=False),
        sa.Column("operation_count", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("health_status", sa.String(20), nullable=False),
        sa.Column("health_reason", sa.Text(), nullable=True),
        sa.Column("health_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_orchestrator_services"),
    )


def downgrade() -> None:
    op.drop_table("orchestrator_services")
