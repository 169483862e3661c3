"""Orchestrator: the space each run belongs to (`default` for the runs before spaces),
so that runs are listed and shown only to members of their space."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0006"
down_revision = "orchestrator_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orchestrator_runs") as batch:
        batch.add_column(sa.Column("space", sa.String(63), nullable=False,
                                   server_default="default"))
    op.create_index(op.f("ix_orchestrator_runs_space"), "orchestrator_runs", ["space"])


def downgrade() -> None:
    op.drop_index(op.f("ix_orchestrator_runs_space"), "orchestrator_runs")
    with op.batch_alter_table("orchestrator_runs") as batch:
        batch.drop_column("space")
