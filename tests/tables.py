"""A table of a running service's database, read or taken away on a connection of the
test's own: what a test needs to watch a request's progress or fail its next statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine


async def rows(url: str, table: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
    finally:
        await engine.dispose()


@asynccontextmanager
async def table_gone(url: str, table: str) -> AsyncIterator[None]:
    """`table` renamed away meanwhile: every statement of the service on it fails, as
    when its database fails under it, and it is back afterwards as it was."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_gone"))
        try:
            yield
        finally:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f"ALTER TABLE {table}_gone RENAME TO {table}"))
    finally:
        await engine.dispose()


async def execute(url: str, sql: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()
