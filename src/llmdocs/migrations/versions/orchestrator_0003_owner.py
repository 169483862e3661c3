"""Orchestrator: a registration's owner, the subject that registered it (none for rows
from before: they count as the services')."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0003"
down_revision = "orchestrator_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orchestrator_services") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orchestrator_services") as batch:
        batch.drop_column("owner")
