"""Orchestrator: privacy requests (erasures across the services) and their receipts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0008"
down_revision = "orchestrator_0007"
branch_labels = None
depends_on = None

TABLE = "orchestrator_privacy_requests"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pseudonym", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("subject_sealed", sa.Text(), nullable=True),
        sa.Column("owned_documents", sa.String(10), nullable=False),
        sa.Column("transfer_to", sa.String(200), nullable=True),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_pseudonym"), TABLE, ["pseudonym"])
    op.create_index(op.f(f"ix_{TABLE}_status"), TABLE, ["status"])


def downgrade() -> None:
    op.drop_table(TABLE)
