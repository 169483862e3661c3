"""Log-collector: log records and events."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "logcollector_0001"
down_revision = None
branch_labels = ("logcollector",)
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "logcollector_logs",
        sa.Column("seq", SEQ, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("logger", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_logcollector_logs"),
        sa.UniqueConstraint("id", name="uq_logcollector_logs_id"),
    )
    op.create_index("ix_logcollector_logs_time", "logcollector_logs", ["time"])
    op.create_index("ix_logcollector_logs_service_time", "logcollector_logs",
                    ["service", "time"])
    op.create_index("ix_logcollector_logs_correlation_time", "logcollector_logs",
                    ["correlation_id", "time"])
    op.create_table(
        "logcollector_events",
        sa.Column("seq", SEQ, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_logcollector_events"),
        sa.UniqueConstraint("event_id", name="uq_logcollector_events_event_id"),
    )
    op.create_index("ix_logcollector_events_time", "logcollector_events", ["time"])
    op.create_index("ix_logcollector_events_type_time", "logcollector_events",
                    ["type", "time"])
    op.create_index("ix_logcollector_events_service_time", "logcollector_events",
                    ["service", "time"])
    op.create_index("ix_logcollector_events_correlation_time", "logcollector_events",
                    ["correlation_id", "time"])


def downgrade() -> None:
    op.drop_table("logcollector_events")
    op.drop_table("logcollector_logs")
