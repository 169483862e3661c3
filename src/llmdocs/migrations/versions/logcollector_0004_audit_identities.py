"""Log-collector: audit records name their actor by pseudonym; whom it stands for is
kept apart, so an erasure removes the identity without touching the chain."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "logcollector_0004"
down_revision = "logcollector_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logcollector_audit_identities",
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=True),  # None: erased
        sa.PrimaryKeyConstraint("pseudonym", name="pk_logcollector_audit_identities"),
    )


def downgrade() -> None:
    op.drop_table("logcollector_audit_identities")
