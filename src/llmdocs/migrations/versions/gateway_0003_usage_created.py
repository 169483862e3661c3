"""llm-gateway usage rows indexed by time: retention finds the rows past their period
without reading the whole table (one row per model call)."""

from __future__ import annotations

from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_gateway_usage_created_at", "gateway_usage", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_gateway_usage_created_at", table_name="gateway_usage")
