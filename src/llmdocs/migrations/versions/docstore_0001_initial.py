"""Doc-store tables, and the search index of each database (for the search ranking in
`llmdocs.services.docstore.search`)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "docstore_0001"
down_revision = None
branch_labels = ("docstore",)
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)

# an external-content FTS5 table over the current versions of live (not soft deleted)
# documents (`rowid` = version id), kept in sync by triggers on both tables, so a search
# without filters never needs to join the documents
SQLITE_SEARCH = [
    """CREATE VIRTUAL TABLE docstore_fts USING fts5(
        title, content, content='docstore_versions', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER docstore_versions_fts_insert AFTER INSERT ON docstore_versions
       WHEN new.is_current BEGIN
         INSERT INTO docstore_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
       END""",
    # an FTS5 'delete' of a row that is not indexed corrupts the index: only live rows
    """CREATE TRIGGER docstore_versions_fts_retire AFTER UPDATE OF is_current ON docstore_versions
       WHEN old.is_current AND NOT new.is_current
         AND (SELECT deleted_at FROM docstore_documents WHERE id = old.document_id) IS NULL BEGIN
         INSERT INTO docstore_fts(docstore_fts, rowid, title, content)
         VALUES ('delete', old.id, old.title, old.content);
       END""",
    """CREATE TRIGGER docstore_versions_fts_delete AFTER DELETE ON docstore_versions
       WHEN old.is_current
         AND (SELECT deleted_at FROM docstore_documents WHERE id = old.document_id) IS NULL BEGIN
         INSERT INTO docstore_fts(docstore_fts, rowid, title, content)
         VALUES ('delete', old.id, old.title, old.content);
       END""",
    """CREATE TRIGGER docstore_documents_fts_soft_delete AFTER UPDATE OF deleted_at
       ON docstore_documents WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL BEGIN
         INSERT INTO docstore_fts(docstore_fts, rowid, title, content)
         SELECT 'delete', id, title, content FROM docstore_versions
         WHERE document_id = new.id AND is_current;
       END""",
    """CREATE TRIGGER docstore_documents_fts_restore AFTER UPDATE OF deleted_at
       ON docstore_documents WHEN old.deleted_at IS NOT NULL AND new.deleted_at IS NULL BEGIN
         INSERT INTO docstore_fts(rowid, title, content)
         SELECT id, title, content FROM docstore_versions
         WHERE document_id = new.id AND is_current;
       END""",
]

# `source` names (as `r`) the versions entering (sign 1) or leaving (sign -1) the index,
# from the statement's transition tables. The single stats row is updated first, so
# concurrent writers queue on it before they touch any term row: no deadlocks.
_PG_TERMS_BODY = """
    UPDATE docstore_search_stats SET ndocs = ndocs + {sign} * (
        SELECT count(*) FROM {source} WHERE {cond}) WHERE id = 1;
    INSERT INTO docstore_terms AS t (lexeme, ndoc)
        SELECT u.lexeme, {sign} * count(*)
        FROM {source} CROSS JOIN LATERAL unnest(r.search_vector) u
        WHERE {cond} GROUP BY u.lexeme ORDER BY u.lexeme
        ON CONFLICT (lexeme) DO UPDATE SET ndoc = t.ndoc + excluded.ndoc;
"""


def _pg_terms_function(name: str, sign: int, source: str, cond: str) -> str:
    body = _PG_TERMS_BODY.format(sign=sign, source=source, cond=cond)
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"{body} RETURN NULL; END $$")


# a generated, weighted tsvector column with a partial GIN index over current versions,
# and a term → document-frequency table kept exact by statement-level triggers (for IDF)
POSTGRES_SEARCH = [
    """ALTER TABLE docstore_versions ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(content, '')), 'B')) STORED""",
    """CREATE INDEX ix_docstore_versions_search ON docstore_versions
       USING gin (search_vector) WHERE is_current""",
    "CREATE TABLE docstore_terms (lexeme text PRIMARY KEY, ndoc bigint NOT NULL)",
    """CREATE TABLE docstore_search_stats (id integer PRIMARY KEY CHECK (id = 1),
       ndocs bigint NOT NULL)""",
    "INSERT INTO docstore_search_stats (id, ndocs) VALUES (1, 0)",
    _pg_terms_function("docstore_terms_inserted", 1, "new_rows r", "r.is_current"),
    _pg_terms_function("docstore_terms_deleted", -1, "old_rows r", "r.is_current"),
    _pg_terms_function("docstore_terms_retired", -1,
                       "old_rows r JOIN new_rows n ON n.id = r.id",
                       "r.is_current AND NOT n.is_current"),
    """CREATE TRIGGER docstore_versions_terms_insert AFTER INSERT ON docstore_versions
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION docstore_terms_inserted()""",
    """CREATE TRIGGER docstore_versions_terms_delete AFTER DELETE ON docstore_versions
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
       EXECUTE FUNCTION docstore_terms_deleted()""",
    """CREATE TRIGGER docstore_versions_terms_retire AFTER UPDATE ON docstore_versions
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION docstore_terms_retired()""",
]


def upgrade() -> None:
    op.create_table(
        "docstore_documents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("format", sa.String(40), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("deleted_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_docstore_documents"),
    )
    for column in ("format", "source", "author", "created_at", "updated_at"):
        op.create_index(f"ix_docstore_documents_{column}", "docstore_documents", [column])
    # the few soft-deleted documents, which an unfiltered search leaves out
    op.create_index("ix_docstore_documents_deleted", "docstore_documents", ["id"],
                    sqlite_where=sa.text("deleted_at IS NOT NULL"),
                    postgresql_where=sa.text("deleted_at IS NOT NULL"))

    op.create_table(
        "docstore_versions",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("blob_key", sa.String(300), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.String(1000), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_docstore_versions"),
        sa.ForeignKeyConstraint(["document_id"], ["docstore_documents.id"], ondelete="CASCADE",
                                name="fk_docstore_versions_document_id_docstore_documents"),
        sa.UniqueConstraint("document_id", "version",
                            name="uq_docstore_versions_document_id_version"),
    )
    op.create_index("ix_docstore_versions_hash", "docstore_versions", ["content_hash"])
    op.create_index("ix_docstore_versions_current", "docstore_versions", ["document_id"],
                    unique=True, sqlite_where=sa.text("is_current"),
                    postgresql_where=sa.text("is_current"))

    op.create_table(
        "docstore_tags",
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "tag", name="pk_docstore_tags"),
        sa.ForeignKeyConstraint(["document_id"], ["docstore_documents.id"], ondelete="CASCADE",
                                name="fk_docstore_tags_document_id_docstore_documents"),
    )
    op.create_index("ix_docstore_tags_tag", "docstore_tags", ["tag", "document_id"])

    op.create_table(
        "docstore_relations",
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "type", "target_id", name="pk_docstore_relations"),
        sa.ForeignKeyConstraint(["source_id"], ["docstore_documents.id"], ondelete="CASCADE",
                                name="fk_docstore_relations_source_id_docstore_documents"),
        sa.ForeignKeyConstraint(["target_id"], ["docstore_documents.id"], ondelete="CASCADE",
                                name="fk_docstore_relations_target_id_docstore_documents"),
    )
    op.create_index("ix_docstore_relations_target", "docstore_relations", ["target_id", "type"])

    op.create_table(
        "docstore_idempotency",
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_docstore_idempotency"),
    )

    dialect = op.get_bind().dialect.name
    for statement in SQLITE_SEARCH if dialect == "sqlite" else POSTGRES_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE docstore_fts")
    else:
        op.execute("DROP TABLE docstore_terms")
        op.execute("DROP TABLE docstore_search_stats")
    for table in ("docstore_idempotency", "docstore_relations", "docstore_tags",
                  "docstore_versions", "docstore_documents"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        for name in ("inserted", "deleted", "retired"):
            op.execute(f"DROP FUNCTION docstore_terms_{name}()")
