"""Log-collector: the hash-chained audit trail and the anchors retention leaves."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "logcollector_0003"
down_revision = "logcollector_0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "logcollector_audit",
        sa.Column("seq", SEQ, autoincrement=True),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("chain", sa.String(100), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("actor_kind", sa.String(20), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("act", sa.Text(), nullable=False),
        sa.Column("client", sa.String(100), nullable=True),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("route", sa.String(500), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("resource_type", sa.String(100), nullable=False),
        sa.Column("resource_id", sa.String(500), nullable=True),
        sa.Column("space", sa.String(200), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_logcollector_audit"),
        sa.UniqueConstraint("record_id", name="uq_logcollector_audit_record_id"),
        sa.UniqueConstraint("chain", "chain_seq", name="uq_logcollector_audit_chain_seq"),
    )
    op.create_index("ix_logcollector_audit_time", "logcollector_audit", ["time"])
    op.create_index("ix_logcollector_audit_actor_time", "logcollector_audit",
                    ["actor", "time"])
    op.create_index("ix_logcollector_audit_resource", "logcollector_audit",
                    ["resource_type", "resource_id"])
    op.create_table(
        "logcollector_audit_anchors",
        sa.Column("chain", sa.String(100), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("removed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_logcollector_audit_anchors"),
    )


def downgrade() -> None:
    op.drop_table("logcollector_audit_anchors")
    op.drop_table("logcollector_audit")
