"""Notification: subscriptions, deliveries and their attempts, the in-app inbox, and
the idempotency keys of its creating POSTs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmdocs.migrations.idempotency import create_key_table, drop_key_table

revision = "notification_0001"
down_revision = None
branch_labels = ("notification",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("space", sa.String(100), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_subscriptions"),
    )
    op.create_index("ix_notification_subscriptions_owner", "notification_subscriptions",
                    ["owner"])
    op.create_index("ix_notification_subscriptions_status", "notification_subscriptions",
                    ["status"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("notification_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(300), nullable=True),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease", sa.String(36), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["notification_subscriptions.id"],
            name="fk_notification_deliveries_subscription",
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.UniqueConstraint("notification_id", "subscription_id",
                            name="uq_notification_deliveries_once"),
    )
    op.create_index("ix_notification_deliveries_due", "notification_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_notification_deliveries_subscription", "notification_deliveries",
                    ["subscription_id", "created_at"])
    op.create_table(
        "notification_attempts",
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["notification_deliveries.id"],
            name="fk_notification_attempts_delivery_id_notification_deliveries",
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("delivery_id", "number", name="pk_notification_attempts"),
    )
    op.create_table(
        "notification_inbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_inbox"),
        sa.UniqueConstraint("delivery_id", name="uq_notification_inbox_delivery_id"),
    )
    op.create_index("ix_notification_inbox_owner", "notification_inbox", ["owner", "id"])
    create_key_table("notification_idempotency")


def downgrade() -> None:
    drop_key_table("notification_idempotency")
    op.drop_table("notification_inbox")
    op.drop_table("notification_attempts")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_subscriptions")
