"""llm-gateway budgets reset per period: the period (total, daily, monthly) and the
window the counters of a budget's row count in."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_budgets") as batch:
        batch.add_column(sa.Column("period", sa.String(10), nullable=False,
                                   server_default="total"))
        batch.add_column(sa.Column("period_key", sa.String(10), nullable=False,
                                   server_default="total"))


def downgrade() -> None:
    with op.batch_alter_table("gateway_budgets") as batch:
        batch.drop_column("period_key")
        batch.drop_column("period")
