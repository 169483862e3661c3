"""Orchestrator: each registered service's allow-list of operations offered as MCP tools
(null: its read-only ones, as for every service registered before the list existed)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0007"
down_revision = "orchestrator_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orchestrator_services") as batch:
        batch.add_column(sa.Column("tool_operations", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orchestrator_services") as batch:
        batch.drop_column("tool_operations")
