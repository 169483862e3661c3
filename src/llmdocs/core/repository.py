"""A generic async repository over one SQLAlchemy model, with rows cached by primary key
and invalidated after every write (the race that remains: docs/internals.md)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from pydantic import Base64Bytes, TypeAdapter, ValidationError
from sqlalchemy import ColumnExpressionArgument, delete, inspect, select, update
from sqlalchemy.orm import DeclarativeBase, Mapper, make_transient_to_detached
from sqlalchemy.sql import ColumnElement

from llmdocs.core.cache import Cache
from llmdocs.core.db import Database

ModelT = TypeVar("ModelT", bound=DeclarativeBase)
PrimaryKey = str | int


def _adapter(column: ColumnElement[Any]) -> TypeAdapter[Any]:
    """Converts one column's values to JSON and back."""
    try:
        kind: Any = column.type.python_type
    except NotImplementedError:
        kind = Any
    if kind is bytes:
        kind = Base64Bytes
    return TypeAdapter(kind | None)


class Repository(Generic[ModelT]):
    """Subclass per model and set `model`; add the model's own queries to the subclass.
    Models must have a single-column primary key."""

    model: type[ModelT]

    def __init__(self, db: Database, cache: Cache | None = None) -> None:
        self.db = db
        self.cache = cache
        self._mapper: Mapper[ModelT] = inspect(self.model)
        if len(self._mapper.primary_key) != 1:
            raise TypeError(f"{self.model.__name__} needs a single-column primary key")
        self._pk = self._mapper.primary_key[0]
        self._columns = {attr.key: _adapter(attr.columns[0])
                         for attr in self._mapper.column_attrs}

    async def get(self, id: PrimaryKey) -> ModelT | None:
        if self.cache is None:
            return await self._fetch(id)
        row = await self.cache.get_or_load(self._key(id), partial(self._fetch_row, id))
        if row is None:
            return None
        try:
            return self._rebuild(row)
        except (KeyError, ValidationError):  # cached by a replica on another schema version
            return await self._fetch(id)

    async def add(self, obj: ModelT) -> ModelT:
        try:
            async with self.db.transaction() as session:
                session.add(obj)
        finally:
            await self.invalidate(*self._mapper.primary_key_from_instance(obj))
        return obj

    async def update(self, id: PrimaryKey, **values: Any) -> ModelT | None:
        """Set columns of one row; returns the updated row, None if there is none."""
        query = update(self.model).where(self._pk == id).values(**values).returning(self.model)
        try:
            async with self.db.transaction() as session:
                return (await session.scalars(query)).one_or_none()
        finally:
            await self.invalidate(id)

    async def delete(self, id: PrimaryKey) -> bool:
        """Delete one row; False if there was none."""
        query = delete(self.model).where(self._pk == id).returning(self._pk)
        try:
            async with self.db.transaction() as session:
                return (await session.execute(query)).first() is not None
        finally:
            await self.invalidate(id)

    async def invalidate(self, *ids: PrimaryKey) -> None:
        """Drop rows from the cache; call it after committing a write made elsewhere."""
        # after the transaction, committed or not: a needless invalidation costs one miss,
        # a missing one serves stale data
        if self.cache is not None:
            await self.cache.delete(*(self._key(id) for id in ids))

    async def list(
        self,
        *where: ColumnExpressionArgument[bool],
        limit: int = 100,
        offset: int = 0,
        order_by: Sequence[ColumnExpressionArgument[Any]] = (),
    ) -> Sequence[ModelT]:
        """Rows matching all `where` conditions, in primary key order unless told."""
        query = (select(self.model).where(*where).order_by(*(order_by or (self._pk,)))
                 .limit(limit).offset(offset))
        async with self.db.session() as session:
            return (await session.scalars(query)).all()

    async def _fetch(self, id: PrimaryKey) -> ModelT | None:
        async with self.db.session() as session:
            return await session.get(self.model, id)

    async def _fetch_row(self, id: PrimaryKey) -> dict[str, Any] | None:
        obj = await self._fetch(id)
        if obj is None:
            return None
        return {key: adapter.dump_python(getattr(obj, key), mode="json")
                for key, adapter in self._columns.items()}

    def _rebuild(self, row: dict[str, Any]) -> ModelT:
        obj = self._mapper.class_manager.new_instance()  # as a load does: no __init__
        for key, adapter in self._columns.items():
            setattr(obj, key, adapter.validate_python(row[key]))
        make_transient_to_detached(obj)
        return obj

    def _key(self, id: PrimaryKey) -> str:
        return f"{self._pk.table.name}:{id}"
