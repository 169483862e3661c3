"""Event bus tables: the events log, group cursors, pending deliveries, dead letters."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_events"
down_revision = None
branch_labels = ("events",)
depends_on = None

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "eventbus_events",
        sa.Column("position", POSITION, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_eventbus_events"),
        sa.UniqueConstraint("event_id", name="uq_eventbus_events_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_eventbus_events_stream_position", "eventbus_events",
                    ["stream", "position"])

    op.create_table(
        "eventbus_cursors",
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.PrimaryKeyConstraint("group_name", "stream", name="pk_eventbus_cursors"),
    )

    op.create_table(
        "eventbus_pending",
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "position", name="pk_eventbus_pending"),
        sa.ForeignKeyConstraint(["position"], ["eventbus_events.position"], ondelete="CASCADE",
                                name="fk_eventbus_pending_position_eventbus_events"),
    )
    op.create_index("ix_eventbus_pending_due", "eventbus_pending",
                    ["group_name", "stream", "delivered_at"])

    op.create_table(
        "eventbus_dead_letters",
        sa.Column("id", POSITION, autoincrement=True),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eventbus_dead_letters"),
        sa.ForeignKeyConstraint(["position"], ["eventbus_events.position"], ondelete="CASCADE",
                                name="fk_eventbus_dead_letters_position_eventbus_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_eventbus_dead_letters_group", "eventbus_dead_letters",
                    ["group_name", "stream", "id"])


def downgrade() -> None:
    op.drop_table("eventbus_dead_letters")
    op.drop_table("eventbus_pending")
    op.drop_table("eventbus_cursors")
    op.drop_table("eventbus_events")
