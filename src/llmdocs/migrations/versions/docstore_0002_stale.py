"""Doc-store: a document's stale mark (why its sources changed, and the finding)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "docstore_0002"
down_revision = "docstore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("docstore_documents", sa.Column("stale_reason", sa.String(1000),
                                                  nullable=True))
    op.add_column("docstore_documents", sa.Column("stale_finding", sa.String(36),
                                                  nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("docstore_documents") as batch:
        batch.drop_column("stale_finding")
        batch.drop_column("stale_reason")
