"""Doc-store: spaces and their members; every document belongs to one, existing
documents to `default` (which every signed-in user may read unless it is closed)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "docstore_0003"
down_revision = "docstore_0002"
branch_labels = None
depends_on = None

NAME = 63  # core.spaces.MAX_NAME, as it was when this ran
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    spaces = op.create_table(
        "docstore_spaces",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False))
    op.bulk_insert(spaces, [{"name": "default", "description": "Where documents go unless "
                             "a space is named; open to every signed-in user by default.",
                             "created_by": "llmdocs", "created_at": datetime.now(UTC)}])
    op.create_table(
        "docstore_space_members",
        sa.Column("space", sa.String(NAME),
                  sa.ForeignKey("docstore_spaces.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", TZ, nullable=False))
    op.create_index("ix_docstore_space_members_subject", "docstore_space_members", ["subject"])
    # a plain ADD COLUMN (no table rebuild: SQLite keeps the search triggers); the
    # server default fills every existing row
    op.add_column("docstore_documents", sa.Column("space", sa.String(NAME), nullable=False,
                                                  server_default="default"))
    op.create_index("ix_docstore_documents_space", "docstore_documents", ["space"])


def downgrade() -> None:
    op.drop_index("ix_docstore_documents_space", "docstore_documents")
    with op.batch_alter_table("docstore_documents") as batch:
        batch.drop_column("space")
    op.drop_index("ix_docstore_space_members_subject", "docstore_space_members")
    op.drop_table("docstore_space_members")
    op.drop_table("docstore_spaces")
