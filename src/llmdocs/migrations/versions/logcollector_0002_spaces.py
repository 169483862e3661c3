"""Log-collector: the space of what each event is about (its CloudEvents `space`
extension; none for events about nothing in a space), so that events are delivered only
to members of that space."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "logcollector_0002"
down_revision = "logcollector_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("logcollector_events") as batch:
        batch.add_column(sa.Column("space", sa.String(63), nullable=True))
    # what was there before spaces was all in `default`: events about documents, runs,
    # executions and findings stay as closed as that space is
    op.execute("UPDATE logcollector_events SET space = 'default' WHERE type LIKE "
               "'llmdocs.document.%' OR type LIKE 'llmdocs.workflow.%' OR type LIKE "
               "'llmdocs.execution.%' OR type LIKE 'llmdocs.spec.%'")


def downgrade() -> None:
    with op.batch_alter_table("logcollector_events") as batch:
        batch.drop_column("space")
