"""Notification: the alert rules' lasting conditions, grouping's windows and the
per-channel rate counters."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notification_0002"
down_revision = "notification_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _of_subscription(table: str) -> sa.ForeignKeyConstraint:
    """Named short: the naming convention's name passes PostgreSQL's 63 characters."""
    return sa.ForeignKeyConstraint(["subscription_id"], ["notification_subscriptions.id"],
                                   name=f"fk_{table}_subscription", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "notification_conditions",
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key"),
    )
    op.create_table(
        "notification_groups",
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("group_key", sa.String(300), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", "group_key"),
        _of_subscription("notification_groups"),
    )
    op.create_table(
        "notification_rates",
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("started", TS, nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "started"),
        _of_subscription("notification_rates"),
    )


def downgrade() -> None:
    op.drop_table("notification_rates")
    op.drop_table("notification_groups")
    op.drop_table("notification_conditions")
