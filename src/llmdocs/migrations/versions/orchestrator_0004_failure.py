"""Orchestrator: why a failed run failed (its request, a dependency down or too slow,
or a fault), so that callers answer a retryable failure as one."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0004"
down_revision = "orchestrator_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orchestrator_runs") as batch:
        batch.add_column(sa.Column("failure", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orchestrator_runs") as batch:
        batch.drop_column("failure")
