"""Prompt-store: idempotency keys of its creating POSTs, each with its first answer."""

from __future__ import annotations

from llmdocs.migrations.idempotency import create_key_table, drop_key_table

revision = "promptstore_0002"
down_revision = "promptstore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_key_table("promptstore_idempotency")


def downgrade() -> None:
    drop_key_table("promptstore_idempotency")
