"""Orchestrator: idempotency keys of POST /workflows/{name}/runs, each with its first
answer."""

from __future__ import annotations

from llmdocs.migrations.idempotency import create_key_table, drop_key_table

revision = "orchestrator_0005"
down_revision = "orchestrator_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_key_table("orchestrator_idempotency")


def downgrade() -> None:
    drop_key_table("orchestrator_idempotency")
