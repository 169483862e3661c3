"""Doc-store on PostgreSQL: the search column holds terms written with each version
(`search.search_terms`, from the plaintext) instead of being generated from `content`,
so contents may be stored encrypted. Existing vectors are kept as they are."""

from __future__ import annotations

from alembic import op

from llmdocs.migrations.versions.docstore_0001_initial import POSTGRES_SEARCH

revision = "docstore_0005"
down_revision = "docstore_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE docstore_versions ALTER COLUMN search_vector DROP EXPRESSION")


def downgrade() -> None:
    """Generated from `content` again: only right while contents are plaintext."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE docstore_versions DROP COLUMN search_vector")  # and its index
    for statement in POSTGRES_SEARCH[:2]:
        op.execute(statement)
