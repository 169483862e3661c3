"""Interpreter: the correlation id of the request that started an execution, so that
its end, seen later by another request, is announced under the first one's id."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "interpreter_0003"
down_revision = "interpreter_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interpreter_executions") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interpreter_executions") as batch:
        batch.drop_column("correlation_id")
