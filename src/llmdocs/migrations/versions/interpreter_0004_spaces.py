"""Interpreter: the space each execution belongs to (`default` for those before spaces),
so that an execution is shown only to members of its space."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "interpreter_0004"
down_revision = "interpreter_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interpreter_executions") as batch:
        batch.add_column(sa.Column("space", sa.String(63), nullable=False,
                                   server_default="default"))


def downgrade() -> None:
    with op.batch_alter_table("interpreter_executions") as batch:
        batch.drop_column("space")
