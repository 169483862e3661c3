"""Analysis: the last spec seen of a URL documents were generated from, whose address
may be as long as a finding's source."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analysis_0002"
down_revision = "analysis_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analysis_specs_seen") as batch:
        batch.alter_column("source", type_=sa.String(2100), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("analysis_specs_seen") as batch:
        batch.alter_column("source", type_=sa.String(200), existing_nullable=False)
