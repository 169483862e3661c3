"""The base repository on SQLite and PostgreSQL: CRUD, reads served from the cache,
writes invalidating it, here and on another replica sharing Redis."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, DateTime, LargeBinary, Numeric, String, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from llmdocs.core.cache import Cache
from llmdocs.core.db import Database
from llmdocs.core.repository import Repository
from waiting import eventually


class Model(DeclarativeBase):
    """Test-local metadata, kept out of the app's migrations."""


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Widget(Model):
    __tablename__ = "widgets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    colour: Mapped[Colour]
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tags: Mapped[list[str]] = mapped_column(JSON)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class WidgetRepository(Repository[Widget]):
    model = Widget


def widget(id: str, *, name: str = "gear", size: int = 1) -> Widget:
    return Widget(id=id, name=name, size=size, price=Decimal("9.99"), colour=Colour.RED,
                  made_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                  tags=["a", "b"], blob=b"\x00\xffbinary")


def columns(obj: Widget) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(Widget).column_attrs}


async def name_of(repo: WidgetRepository, id: str) -> str:
    got = await repo.get(id)
    assert got is not None
    return got.name



@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(Model.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
async def caches(redis_url: str) -> AsyncIterator[tuple[Cache, Cache]]:
    """Two replicas' caches sharing Redis; a long TTL so only invalidation refreshes."""
    a, b = (Cache("svc", url=redis_url, ttl=60) for _ in range(2))
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def rename_behind_its_back(db: Database, id: str, name: str) -> None:
    async with db.transaction() as session:
        await session.execute(text("UPDATE widgets SET name = :name WHERE id = :id"),
                              {"name": name, "id": id})


async def test_crud_without_a_cache(db: Database) -> None:
    repo = WidgetRepository(db)
    added = await repo.add(widget("w1"))
    assert added.id == "w1"
    got = await repo.get("w1")
    assert got is not None and got.name == "gear" and got.tags == ["a", "b"]
    assert await repo.get("missing") is None

    updated = await repo.update("w1", name="cog", size=3)
    assert updated is not None and (updated.name, updated.size) == ("cog", 3)
    assert await repo.update("missing", name="x") is None

    assert await repo.delete("w1") is True
    assert await repo.get("w1") is None
    assert await repo.delete("w1") is False


async def test_a_failed_add_raises_and_changes_nothing(db: Database) -> None:
    repo = WidgetRepository(db)
    await repo.add(widget("w1"))
    with pytest.raises(IntegrityError):
        await repo.add(widget("w1", name="duplicate"))
    got = await repo.get("w1")
    assert got is not None and got.name == "gear"


async def test_list_filters_orders_and_pages(db: Database) -> None:
    repo = WidgetRepository(db)
    for id, size in (("w2", 5), ("w1", 9), ("w3", 1)):
        await repo.add(widget(id, size=size))
    assert [w.id for w in await repo.list()] == ["w1", "w2", "w3"]
    assert [w.id for w in await repo.list(order_by=[Widget.size.desc()])] == ["w1", "w2", "w3"]
    assert [w.id for w in await repo.list(order_by=[Widget.size])] == ["w3", "w2", "w1"]
    assert [w.id for w in await repo.list(limit=1, offset=1)] == ["w2"]
    assert [w.id for w in await repo.list(Widget.size > 1, Widget.size < 9)] == ["w2"]


async def test_cached_rows_come_back_as_the_database_gives_them(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    cached_repo, plain_repo = WidgetRepository(db, caches[0]), WidgetRepository(db)
    await cached_repo.add(widget("w1"))
    from_db = await plain_repo.get("w1")
    first = await cached_repo.get("w1")  # a miss: loaded, cached
    second = await cached_repo.get("w1")  # from L1
    assert from_db is not None and first is not None and second is not None
    assert columns(second) == columns(first) == columns(from_db)
    assert {k: type(v) for k, v in columns(second).items()} == {
        k: type(v) for k, v in columns(from_db).items()
    }
    assert inspect(second).detached
    assert caches[0].stats.l1_hits == 1


async def test_get_is_served_from_the_cache_until_a_write_invalidates_it(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    repo = WidgetRepository(db, caches[0])
    await repo.add(widget("w1"))
    assert await name_of(repo, "w1") == "gear"
    await rename_behind_its_back(db, "w1", "renamed")
    assert await name_of(repo, "w1") == "gear"

    await repo.update("w1", size=7)
    got = await repo.get("w1")
    assert got is not None and (got.name, got.size) == ("renamed", 7)

    await rename_behind_its_back(db, "w1", "again")
    await repo.invalidate("w1")
    assert await name_of(repo, "w1") == "again"

    await repo.delete("w1")
    assert await repo.get("w1") is None


async def test_a_failed_write_still_invalidates(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    """A write that raised may have committed (the commit's answer got lost), so the
    cached row is dropped either way."""
    repo = WidgetRepository(db, caches[0])
    await repo.add(widget("w1"))
    assert await name_of(repo, "w1") == "gear"
    await rename_behind_its_back(db, "w1", "renamed")
    with pytest.raises(IntegrityError):
        await repo.update("w1", name=None)
    assert await name_of(repo, "w1") == "renamed"


async def test_add_invalidates_a_row_cached_before(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    repo = WidgetRepository(db, caches[0])
    await repo.add(widget("w1"))
    assert await name_of(repo, "w1") == "gear"
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM widgets"))
    await repo.add(widget("w1", name="reborn"))
    assert await name_of(repo, "w1") == "reborn"


async def test_a_row_cached_in_another_shape_is_read_from_the_database(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    """A replica running an older schema may have cached a row without a column."""
    repo = WidgetRepository(db, caches[0])
    await repo.add(widget("w1"))
    await caches[0].set("widgets:w1", {"id": "w1", "name": "old shape"})
    got = await repo.get("w1")
    assert got is not None and got.name == "gear"


async def test_a_write_on_one_replica_invalidates_the_other(
    db: Database, caches: tuple[Cache, Cache]
) -> None:
    repo_a, repo_b = WidgetRepository(db, caches[0]), WidgetRepository(db, caches[1])
    await repo_a.add(widget("w1"))
    assert await name_of(repo_a, "w1") == "gear"
    assert await name_of(repo_b, "w1") == "gear"
    assert caches[1].stats.l2_hits == 1  # b read what a cached

    await repo_b.update("w1", name="cog")

    async def a_sees_the_update() -> bool:
        got = await repo_a.get("w1")
        return got is not None and got.name == "cog"

    await eventually(a_sees_the_update)

    await repo_b.delete("w1")

    async def a_sees_the_delete() -> bool:
        return await repo_a.get("w1") is None

    await eventually(a_sees_the_delete)


def test_a_composite_primary_key_is_refused() -> None:
    class Other(DeclarativeBase):
        pass

    class Pair(Other):
        __tablename__ = "pairs"
        left: Mapped[str] = mapped_column(primary_key=True)
        right: Mapped[str] = mapped_column(primary_key=True)

    class PairRepository(Repository[Pair]):
        model = Pair

    with pytest.raises(TypeError, match="single-column primary key"):
        PairRepository(Database("sqlite+aiosqlite:///:memory:"))
