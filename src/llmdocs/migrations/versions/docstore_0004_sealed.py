"""Doc-store: a search index that works when contents are encrypted at rest (SQLite).
The FTS5 table reads its external content through a view that decrypts, and its
triggers index `llmdocs_plain(content)` (a function each connection registers, see
`Database`): the index keeps terms, the versions table only ciphertext. PostgreSQL's
generated tsvector is untouched (see README, "Encryption at rest")."""

from __future__ import annotations

from alembic import op

from llmdocs.migrations.versions.docstore_0001_initial import SQLITE_SEARCH

revision = "docstore_0004"
down_revision = "docstore_0003"
branch_labels = None
depends_on = None

TRIGGERS = ("docstore_versions_fts_insert", "docstore_versions_fts_retire",
            "docstore_versions_fts_delete", "docstore_documents_fts_soft_delete",
            "docstore_documents_fts_restore")
VIEW = ("CREATE VIEW docstore_versions_plain AS SELECT id, title, "
        "llmdocs_plain(content) AS content FROM docstore_versions")
# every live current version, as the triggers would have indexed it
REINDEX = """INSERT INTO docstore_fts(rowid, title, content)
    SELECT v.id, v.title, {content} FROM docstore_versions v
    JOIN docstore_documents d ON d.id = v.document_id
    WHERE v.is_current AND d.deleted_at IS NULL"""


def _search(plain: bool) -> list[str]:
    """The 0001 index and triggers, reading plaintext through `llmdocs_plain` or not."""
    statements = []
    for statement in SQLITE_SEARCH:
        if plain:
            statement = (statement.replace("content='docstore_versions'",
                                           "content='docstore_versions_plain'")
                         .replace("new.content", "llmdocs_plain(new.content)")
                         .replace("old.content", "llmdocs_plain(old.content)")
                         .replace("SELECT 'delete', id, title, content",
                                  "SELECT 'delete', id, title, llmdocs_plain(content)")
                         .replace("SELECT id, title, content",
                                  "SELECT id, title, llmdocs_plain(content)"))
        statements.append(statement)
    return statements


def _rebuild(plain: bool) -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute("DROP TABLE docstore_fts")
    for statement in _search(plain):
        op.execute(statement)
    op.execute(REINDEX.format(content="llmdocs_plain(v.content)" if plain else "v.content"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(VIEW)
    _rebuild(plain=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(plain=False)
    op.execute("DROP VIEW docstore_versions_plain")
