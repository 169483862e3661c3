"""Statements every service's erasure (core.privacy) uses: delete a person's rows,
name them by pseudonym where a row must stay, and find them in JSON columns."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from llmdocs.core.privacy import rowcount


def replaced(value: Any, old: str, new: str) -> Any:
    """`value` (JSON) with every string equal to `old` (a key or a value) as `new`."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, list):
        return [replaced(item, old, new) for item in value]
    if isinstance(value, dict):
        return {replaced(k, old, new): replaced(v, old, new) for k, v in value.items()}
    return value


def naming(column: InstrumentedAttribute[Any], subject: str) -> sa.ColumnElement[bool]:
    """Rows whose column (text or JSON) holds `subject` somewhere: narrow in Python."""
    return sa.cast(column, sa.Text).contains(subject, autoescape=True)


async def dropped(session: AsyncSession, statement: sa.Delete) -> int:
    """How many rows `statement` deleted."""
    return rowcount(await session.execute(
        statement.execution_options(synchronize_session=False)))


async def renamed(session: AsyncSession, column: InstrumentedAttribute[Any], old: str,
                  new: str) -> int:
    """Rows whose `column` is `old` made `new` (a person made a pseudonym); how many."""
    return rowcount(await session.execute(sa.update(column.class_).where(column == old)
                                          .values({column.key: new})
                                          .execution_options(synchronize_session=False)))


async def rewritten(session: AsyncSession, column: InstrumentedAttribute[Any], old: str,
                    new: str) -> int:
    """JSON values of `column` naming `old` exactly (a key or a value) made to name
    `new`; how many rows changed."""
    rows = (await session.scalars(sa.select(column.class_).where(naming(column, old)))).all()
    changed = 0
    for row in rows:
        value = getattr(row, column.key)
        new_value = replaced(value, old, new)
        if new_value != value:
            setattr(row, column.key, new_value)
            changed += 1
    return changed
