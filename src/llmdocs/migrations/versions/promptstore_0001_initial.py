"""Prompt-store tables: prompts, versions, labels, A/B tests, outcomes, usage."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "promptstore_0001"
down_revision = None
branch_labels = ("promptstore",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "promptstore_prompts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("forked_from", sa.String(36), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_promptstore_prompts"),
        sa.UniqueConstraint("name", name="uq_promptstore_prompts_name"),
    )
    op.create_index("ix_promptstore_prompts_category", "promptstore_prompts", ["category"])
    op.create_table(
        "promptstore_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("prompt_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_promptstore_versions"),
        sa.UniqueConstraint("prompt_id", "version", name="uq_promptstore_versions_prompt_id"),
        sa.ForeignKeyConstraint(["prompt_id"], ["promptstore_prompts.id"], ondelete="CASCADE",
                                name="fk_promptstore_versions_prompt_id_promptstore_prompts"),
    )
    op.create_table(
        "promptstore_labels",
        sa.Column("prompt_id", sa.String(36), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", "label", name="pk_promptstore_labels"),
        sa.ForeignKeyConstraint(["prompt_id"], ["promptstore_prompts.id"], ondelete="CASCADE",
                                name="fk_promptstore_labels_prompt_id_promptstore_prompts"),
    )
    op.create_table(
        "promptstore_abtests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("prompt_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("significance", sa.Float(), nullable=False),
        sa.Column("min_samples", sa.Integer(), nullable=False),
        sa.Column("auto_stop", sa.Boolean(), nullable=False),
        sa.Column("promote_label", sa.String(100), nullable=True),
        sa.Column("winner", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("stopped_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_promptstore_abtests"),
        sa.ForeignKeyConstraint(["prompt_id"], ["promptstore_prompts.id"], ondelete="CASCADE",
                                name="fk_promptstore_abtests_prompt_id_promptstore_prompts"),
    )
    op.create_index("ix_promptstore_abtests_prompt_id", "promptstore_abtests", ["prompt_id"])
    op.create_table(
        "promptstore_outcomes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("test_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_promptstore_outcomes"),
        sa.ForeignKeyConstraint(["test_id"], ["promptstore_abtests.id"], ondelete="CASCADE",
                                name="fk_promptstore_outcomes_test_id_promptstore_abtests"),
    )
    op.create_index("ix_promptstore_outcomes_test_id", "promptstore_outcomes", ["test_id"])
    op.create_table(
        "promptstore_usage",
        sa.Column("prompt_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("renders", sa.Integer(), nullable=False),
        sa.Column("completions", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_ms_total", sa.Float(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", "version", name="pk_promptstore_usage"),
    )
    op.create_table(
        "promptstore_seen_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_promptstore_seen_events"),
    )


def downgrade() -> None:
    for table in ("promptstore_seen_events", "promptstore_usage", "promptstore_outcomes",
                  "promptstore_abtests", "promptstore_labels", "promptstore_versions",
                  "promptstore_prompts"):
        op.drop_table(table)
