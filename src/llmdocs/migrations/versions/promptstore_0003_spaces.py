"""Prompt-store: every prompt belongs to a space (core.spaces); existing ones to
`default`, which every signed-in user may use unless it is closed."""

from __future__ import annotations

from llmdocs.migrations.spaces import add_space_column, drop_space_column

revision = "promptstore_0003"
down_revision = "promptstore_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_space_column("promptstore_prompts")


def downgrade() -> None:
    drop_space_column("promptstore_prompts")
