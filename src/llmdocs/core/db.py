"""Async SQLAlchemy engine from a URL: SQLite (WAL) embedded, PostgreSQL distributed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import AfterValidator
from sqlalchemy import Connection, MetaData, event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from llmdocs.core import crypto, tracing
from llmdocs.core.config import Settings
from llmdocs.core.sqlite import WAL_BOUND, OneTripDbapi, WalFolder

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MIGRATION_LOCK_ID = 7_411_900  # pg advisory lock taken while migrating
# brings the schema on a connection to the newest revision; the migrations live above
# the kernel, so whoever opens a database hands theirs in
SchemaUpgrade = Callable[[Connection], None]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """RFC 3339 UTC out: SQLite hands back naive datetimes (stored as UTC), and a
    time given with another offset is converted (a ValueError when UTC has no such
    time: 9999-12-31T23:00:00-05:00 is after the last one a datetime holds)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the times UTC can hold (years 1 to 9999)") from None


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]

# the largest number an INTEGER column holds on PostgreSQL (versions, offsets, limits): a
# larger one sent as a parameter is a database error, so requests are bounded by it
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1  # the same for a BIGINT column (sequence numbers)


def storable(value: str) -> str:
    """`value`, when a column can hold it (else a ValueError that says why)."""
    utf8_size(value)
    return value


def escaped(text: str, limit: int) -> str:
    """Text from outside that is only reported (an error quoting a spec, a health
    report), cut to `limit` and as any column and JSON writer take it: a NUL or a lone
    surrogate written as its escape."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()[:limit]


def utf8_size(value: str) -> int:
    """The bytes of `value` in UTF-8, when a column can hold it (else a ValueError that
    says why)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    try:
        return len(value.encode())
    except UnicodeEncodeError:
        raise ValueError("must be text UTF-8 can encode (no lone surrogate)") from None


# Text a request may bring that ends up in a column: PostgreSQL text (and jsonb) cannot
# hold NUL, and SQLite would keep it where PostgreSQL refuses it; both refuse it here, and
# a lone surrogate (JSON's "\udc00" is one), which no UTF-8 column can hold.
StorableText = Annotated[str, AfterValidator(storable)]


# Batches bound as one JSON value. A bulk INSERT through executemany costs Python a
# parameter-processing pass per row; these bind a whole batch as one JSON string and
# let the database unpack it (SQLite `json_each`, PostgreSQL `json_to_recordset`), so a
# row costs only its share of one `orjson.dumps`, and on PostgreSQL the INSERT is one
# statement (statement-level triggers fire once per batch).


@dataclass(frozen=True)
class FromKeys:
    """A column computed in SQL from keys of each row, which need not be columns (the
    doc-store's search terms, from plaintext that is stored only encrypted)."""

    build: Callable[..., sa.ColumnElement[Any]]
    keys: tuple[tuple[str, sa.types.TypeEngine[Any]], ...]


RowFields = dict[str, str | sa.ColumnElement[Any] | FromKeys]


def json_param(value: Any) -> str:
    """JSON for a bound batch; the stdlib takes what orjson refuses (integers > 64 bit)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def json_values(dialect: str, name: str) -> sa.Select[Any]:
    """The strings of the JSON array bound as `name`, as a one-column subquery (an
    `IN` over thousands of values without thousands of parameters)."""
    array = sa.bindparam(name, type_=sa.Text)
    if dialect == "postgresql":
        return sa.select(sa.func.json_array_elements_text(sa.cast(array, sa.JSON)))
    return sa.select(sa.func.json_each(array).table_valued("value").c.value)


def json_rows(dialect: str, table: sa.TableClause, fields: RowFields,
              name: str = "rows") -> tuple[list[str], sa.Select[Any]]:
    """The target columns and a SELECT of the JSON array of objects bound as `name`.
    `fields` maps a column of `table` to the key of a row holding its value, to an
    expression (a constant or a bound parameter, processed once per batch) or to a
    `FromKeys`. PostgreSQL types each key by its column (or as `FromKeys` says). The
    `WHERE true` lets SQLite parse an upsert after it."""
    keys = {column: key for column, key in fields.items() if isinstance(key, str)}
    types = {key: table.c[column].type for column, key in keys.items()}
    for field in fields.values():
        if isinstance(field, FromKeys):
            types |= {key: type_ for key, type_ in field.keys if key not in types}
    rows = sa.bindparam(name, type_=sa.Text)
    read: dict[str, sa.ColumnElement[Any]]
    if dialect == "postgresql":
        source: Any = (sa.func.json_to_recordset(sa.cast(rows, sa.JSON))
                       .table_valued(*(sa.column(key, type_) for key, type_ in types.items()))
                       .render_derived(name="r", with_types=True))
        read = {key: source.c[key] for key in types}
    else:
        source = sa.func.json_each(rows).table_valued("value")
        read = {key: sa.func.json_extract(source.c.value, f"$.{key}") for key in types}
    values = {column: read[key] for column, key in keys.items()}
    values |= {column: value.build(*(read[key] for key, _ in value.keys))
               if isinstance(value, FromKeys) else value
               for column, value in fields.items() if not isinstance(value, str)}
    return list(values), sa.select(*values.values()).select_from(source).where(sa.true())


def insert_json_rows(dialect: str, table: sa.TableClause, fields: RowFields
                     ) -> sa.Insert:
    """INSERT … SELECT from the JSON rows bound as `rows` (see `json_rows`)."""
    return sa.insert(table).from_select(*json_rows(dialect, table, fields))


def ring_of(dialect: sa.Dialect) -> crypto.KeyRing | None:
    """The key ring of the engine this dialect belongs to (see `Database`)."""
    ring: crypto.KeyRing | None = getattr(dialect, "llmdocs_ring", None)
    return ring


class Sealed(sa.TypeDecorator[str]):
    """Text encrypted at rest when the engine has a key ring (`LLMDOCS_ENCRYPTION_KEYS`),
    plaintext otherwise; either reads back, so turning encryption on needs no migration.
    Only ORM and Core statements naming the column pass through here: bulk paths that
    bind JSON batches seal their values themselves (`Database.seal`)."""

    impl = sa.Text
    cache_ok = True

    def seals(self, dialect: sa.Dialect) -> bool:
        return ring_of(dialect) is not None

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        ring = ring_of(dialect)
        return value if value is None or ring is None else ring.seal_text(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return value if value is None else crypto.open_text(ring_of(dialect), value)

    def renewed(self, raw: str, ring: crypto.KeyRing, row: str) -> Any:
        """For key rotation (`raw` as stored): None when sealed with the ring's current
        key, else what to write through this type so that it is (see `RESEALED`)."""
        return None if ring.is_current(raw) else ring.open_text(raw)


class SealedPerRow(sa.TypeDecorator[str]):
    """Text its service seals itself with its own ring, bound to its row (the row's
    primary key is the associated data): secrets kept encrypted always, with
    `Settings.secrets_ring`. Stored as given; key rotation re-seals it for its row."""

    impl = sa.Text
    cache_ok = True

    def renewed(self, raw: str, ring: crypto.KeyRing, row: str) -> Any:
        return None if ring.is_current(raw) else ring.seal_text(ring.open_text(raw, row), row)


class SealedJSON(sa.TypeDecorator[Any]):
    """A JSON column whose value is sealed as one JSON string when the engine has a key
    ring (short-lived records: replayed answers to keyed requests)."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        ring = ring_of(dialect)
        return value if value is None or ring is None else ring.seal_text(json_param(value))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, str) and value.startswith(crypto.TEXT_PREFIX):
            return json.loads(crypto.open_text(ring_of(dialect), value))
        return value

    def renewed(self, raw: str, ring: crypto.KeyRing, row: str) -> Any:
        value = json.loads(raw)
        if not (isinstance(value, str) and value.startswith(crypto.TEXT_PREFIX)):
            return value
        return None if ring.is_current(value) else json.loads(ring.open_text(value))


class SealedFields(sa.TypeDecorator[Any]):
    """A JSON object whose text values at `paths` (key paths into nested objects) are
    sealed when the engine has a key ring: what a user wrote, inside a record whose
    other fields stay readable. Values written before the ring read as they are."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, *paths: tuple[str, ...]) -> None:
        super().__init__()
        self.paths = paths

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return self.sealed(value, ring_of(dialect))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        ring = ring_of(dialect)
        return self._each(value, lambda text: crypto.open_text(ring, text))

    def renewed(self, raw: str, ring: crypto.KeyRing, row: str) -> Any:
        value, texts = json.loads(raw), list[str]()

        def found(text: str) -> str:
            texts.append(text)
            return text

        self._each(value, found)
        if all(ring.is_current(text) for text in texts):
            return None
        return self._each(value, lambda text: crypto.open_text(ring, text))

    def sealed(self, value: Any, ring: crypto.KeyRing | None) -> Any:
        """`value` as the column stores it (for bulk paths binding raw batches)."""
        return value if ring is None else self._each(value, ring.seal_text)

    def _each(self, value: Any, change: Callable[[str], str]) -> Any:
        """A copy of `value` with `change` applied to the text at each path present."""
        if not isinstance(value, dict):
            return value
        for path in self.paths:
            parents = [value]
            for key in path[:-1]:
                child = parents[-1].get(key)
                if not isinstance(child, dict):
                    break
                parents.append(child)
            else:
                if isinstance(text := parents[-1].get(path[-1]), str):
                    node = {**parents[-1], path[-1]: change(text)}
                    for parent, key in zip(reversed(parents[:-1]), reversed(path[:-1]),
                                           strict=True):
                        node = {**parent, key: node}
                    value = node
        return value


# every type of column holding sealed values: what key rotation re-seals (`renewed`)
RESEALED = (Sealed, SealedPerRow, SealedJSON, SealedFields)
_KEY_ID = re.compile(re.escape(crypto.TEXT_PREFIX) + r"([A-Za-z0-9_.-]{1,64}):")


def sealed_columns(metadata: MetaData, kinds: tuple[type, ...] = (Sealed,)
                   ) -> list[sa.Column[Any]]:
    """Every column of `kinds` (the startup check reads `Sealed` ones; rotation all)."""
    return [column for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, kinds)]


def key_ids_in(raw: str) -> set[str]:
    """The ids of the keys that the values sealed in `raw` (a column's stored text,
    JSON or not) need."""
    return set(_KEY_ID.findall(raw))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """No busy timeout: the driver (core/sqlite.py) waits for a busy database itself,
    without blocking the event loop; deleted rows are zeroed, not left in free pages
    (an erased person's data must leave the file: core/scrub.py)."""
    cursor = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                   "busy_timeout=0", "secure_delete=ON", WAL_BOUND):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _drop_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, a terminated backend),
    without `pool_pre_ping`'s three round trips per checkout (0.4 ms of a 2 ms search)."""
    # free: asyncpg keeps reading an idle connection, so it has seen the server's goodbye
    # by now; the pool replaces the connection this refuses with a new one
    if dbapi_conn.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the server closed this connection")


def _trace_statements(engine: sa.Engine, system: str) -> None:
    """A client span per statement of a traced request or run, when spans are exported."""
    def before(conn: Connection, cursor: Any, statement: str, parameters: Any,
               context: Any, executemany: bool) -> None:
        if context is None or not tracing.recording(within_trace=True):
            return
        operation = (statement[:40].split(None, 1) or ["SQL"])[0].upper()
        context.llmdocs_span = tracing.tracer().start_span(
            f"{operation} {system}", kind=SpanKind.CLIENT,
            attributes={"db.system.name": system, "db.operation.name": operation,
                        "db.query.text": statement[:2000]})

    def after(conn: Connection, cursor: Any, statement: str, parameters: Any,
              context: Any, executemany: bool) -> None:
        span = getattr(context, "llmdocs_span", None)
        if span is not None:
            span.end()

    def failed(error: sa.engine.ExceptionContext) -> None:
        span = getattr(error.execution_context, "llmdocs_span", None)
        if span is not None:
            span.record_exception(error.original_exception)
            span.set_status(StatusCode.ERROR, type(error.original_exception).__name__)
            span.end()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20,
                 ring: crypto.KeyRing | None = None) -> None:
        self.url = url
        self.ring = ring
        self._folder: WalFolder | None = None
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            kwargs = {"pool_size": pool_size, "max_overflow": max_overflow,
                      "pool_recycle": 1800}
        else:
            path = "" if ":memory:" in url else self._ensure_sqlite_dir()
            self._folder = WalFolder(path) if path else None
            if "+aiosqlite" in url:
                kwargs = {"module": OneTripDbapi(
                    self._folder.committed if self._folder is not None else None)}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        _trace_statements(self.engine.sync_engine, self.dialect)
        # what `Sealed` columns encrypt with: per engine, so two stores in one process
        # (a benchmark comparing them) can differ
        self.engine.sync_engine.dialect.llmdocs_ring = ring  # type: ignore[attr-defined]
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "connect", self._sqlite_functions)
        else:
            event.listen(self.engine.sync_engine.pool, "checkout", _drop_closed)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, pool_size=settings.db_pool_size,
                   max_overflow=settings.db_max_overflow, ring=settings.data_ring)

    def seals(self, column: sa.Column[Any]) -> bool:
        """Whether the `Sealed` `column` is stored encrypted on this database."""
        assert isinstance(column.type, Sealed)
        return column.type.seals(self.engine.sync_engine.dialect)

    def seal(self, value: str | None, column: sa.Column[Any]) -> str | None:
        """`value` as the `Sealed` `column` stores it, for statements binding raw
        batches."""
        if value is None or not self.seals(column):
            return value
        assert self.ring is not None
        return self.ring.seal_text(value)

    def _sqlite_functions(self, dbapi_conn: Any, _record: Any) -> None:
        """`llmdocs_plain(text)` for SQL that must see plaintext: the doc-store's FTS5
        triggers and content view index and quote what the column stores encrypted."""
        def plain(value: str | None) -> str | None:
            return value if value is None else crypto.open_text(self.ring, value)

        dbapi_conn.create_function("llmdocs_plain", 1, plain, deterministic=True)

    async def check_keys(self, metadata: MetaData) -> None:
        """Refuse to start when the oldest or newest encrypted record of a column names a
        key the ring lacks (a full scan would cost minutes on a large store; any other
        record with a missing key fails its read with an error naming the key)."""
        prefix = crypto.TEXT_PREFIX
        if self.ring is not None:  # a ring file a rotation added a key to since it was read
            self.ring.refresh(force=True)
        async with self.engine.connect() as conn:
            existing = set(await conn.run_sync(
                lambda sync: sa.inspect(sync).get_table_names()))
            for column in sealed_columns(metadata):
                if column.table.name not in existing:
                    continue
                raw = sa.type_coerce(column, sa.Text)
                pk = next(iter(column.table.primary_key.columns))
                for order in (pk.asc(), pk.desc()):
                    value = (await conn.execute(
                        sa.select(raw).order_by(order).limit(1))).scalar()
                    if value is not None and value.startswith(prefix):
                        key_id = value[len(prefix):].partition(":")[0]
                        if self.ring is None or key_id not in self.ring.key_ids:
                            raise crypto.UnknownKey(key_id)

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"

    def _ensure_sqlite_dir(self) -> str:
        """The database file's path, its directory made."""
        from pathlib import Path

        path = self.url.split("///", 1)[-1].split("?", 1)[0]
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return path

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions.begin() as session:
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a single read statement, with no transaction around it.
        PostgreSQL runs it in autocommit (no BEGIN and ROLLBACK round trips). SQLite's
        driver begins no transaction for a SELECT, so it gets a plain connection:
        switching it to autocommit and back would cost more statements than it spares."""
        async with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def ping(self) -> float:
        """Round-trip a trivial query; returns milliseconds."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def migrate(self, upgrade: SchemaUpgrade) -> None:
        """Bring the schema to the newest revision; safe with many replicas starting."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
            await conn.run_sync(upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._folder is not None:
            await self._folder.aclose()

