"""Analysis: the space of a finding's source document (none for a URL or a service) and
of each document a finding touches (`default` for those before spaces), so findings are
shown only to members of those spaces."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analysis_0003"
down_revision = "analysis_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analysis_findings") as batch:
        batch.add_column(sa.Column("space", sa.String(63), nullable=True))
    op.execute("UPDATE analysis_findings SET space = 'default' "
               "WHERE source LIKE 'docstore:%'")
    with op.batch_alter_table("analysis_finding_documents") as batch:
        batch.add_column(sa.Column("space", sa.String(63), nullable=False,
                                   server_default="default"))


def downgrade() -> None:
    with op.batch_alter_table("analysis_finding_documents") as batch:
        batch.drop_column("space")
    with op.batch_alter_table("analysis_findings") as batch:
        batch.drop_column("space")
