"""Doc-store: spaces and their members; every document belongs to one, existing
documents to `default` (which every signed-in user may read unless it is closed)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from llmdocs.migrations.spaces import NAME, add_space_column, drop_space_column

revision = "docstore_0003"
down_revision = "docstore_0002"
branch_labels = None
depends_on = None

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
    add_space_column("docstore_documents")  # SQLite keeps the search triggers


def downgrade() -> None:
    drop_space_column("docstore_documents")
    op.drop_index("ix_docstore_space_members_subject", "docstore_space_members")
    op.drop_table("docstore_space_members")
    op.drop_table("docstore_spaces")
