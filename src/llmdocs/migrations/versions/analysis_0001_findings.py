"""Analysis: findings, the documents each touches, the specs of registered services."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analysis_0001"
down_revision = None
branch_labels = ("analysis",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "analysis_findings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(2100), nullable=False),
        sa.Column("base", sa.String(64), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analysis_findings"),
        sa.UniqueConstraint("source", "base", "head", name="uq_analysis_findings_change"),
    )
    op.create_index("ix_analysis_findings_status_created", "analysis_findings",
                    ["status", "created_at"])
    op.create_table(
        "analysis_finding_documents",
        sa.Column("finding_id", sa.String(36), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(["finding_id"], ["analysis_findings.id"],
                                name="fk_analysis_finding_documents_finding_id_analysis_findings",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("finding_id", "document_id",
                                name="pk_analysis_finding_documents"),
    )
    op.create_index("ix_analysis_finding_documents_document", "analysis_finding_documents",
                    ["document_id"])
    op.create_table(
        "analysis_specs_seen",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_analysis_specs_seen"),
    )


def downgrade() -> None:
    op.drop_table("analysis_specs_seen")
    op.drop_table("analysis_finding_documents")
    op.drop_table("analysis_findings")
