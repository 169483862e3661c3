"""Prompt-store: every prompt belongs to a space (core.spaces); existing ones to
`default`, which every signed-in user may use unless it is closed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "promptstore_0003"
down_revision = "promptstore_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("promptstore_prompts", sa.Column("space", sa.String(63), nullable=False,
                                                   server_default="default"))
    op.create_index("ix_promptstore_prompts_space", "promptstore_prompts", ["space"])


def downgrade() -> None:
    op.drop_index("ix_promptstore_prompts_space", "promptstore_prompts")
    with op.batch_alter_table("promptstore_prompts") as batch:
        batch.drop_column("space")
