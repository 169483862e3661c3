"""The `space` column every table of things in spaces has (core.spaces), as migrations
add it: existing rows go to `default`, which keeps them readable as they were."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

NAME = 63  # core.spaces.MAX_NAME, as it was when these migrations were written


def add_space_column(table: str) -> None:
    """A plain ADD COLUMN with a server default (no table rebuild on SQLite, so its
    triggers stay), indexed for the `IN` filter every read has."""
    op.add_column(table, sa.Column("space", sa.String(NAME), nullable=False,
                                   server_default="default"))
    op.create_index(f"ix_{table}_space", table, ["space"])


def drop_space_column(table: str) -> None:
    op.drop_index(f"ix_{table}_space", table)
    with op.batch_alter_table(table) as batch:
        batch.drop_column("space")
