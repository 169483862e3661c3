"""`llmdocs keys rotate`: add a key as the last of the ring, then re-encrypt every record
and blob with it in batches while the services keep serving. Each batch commits on its
own and its progress is saved (`key-rotation.json` in the data dir), so a stopped
rotation resumes where it was; every record opens with the old key or the new one
throughout (services re-read the ring file, see `KeyRing.refresh`). When it reports
done, no record needs the older keys, and they may be removed from the ring."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer

from llmdocs.core import crypto
from llmdocs.core.config import Settings
from llmdocs.core.db import RESEALED, Base, Database, key_ids_in, sealed_columns

PROGRESS_FILE = "key-rotation.json"
BLOBS = "blobs"  # the progress entry of the doc-store's blob store


@dataclass
class Rotation:
    key: str
    done: dict[str, Any] = field(default_factory=dict)  # column/blobs → last key handled
    resealed: int = 0
    finished: bool = False

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": self.key, "done": self.done,
                                   "resealed": self.resealed, "finished": self.finished}))
        tmp.replace(path)


def ring_file(settings: Settings) -> Path:
    """The ring's file: rotation writes the new key there, where every service reads."""
    raw = settings.encryption_keys.get_secret_value() if settings.encryption_keys else ""
    if not raw or raw.strip().startswith("{"):
        raise crypto.KeyRingError(
            "`llmdocs keys rotate` needs LLMDOCS_ENCRYPTION_KEYS to be the path of a file "
            "holding the ring (every service reads it, and rotation adds its key there)")
    return Path(raw.strip()).expanduser()


def add_key(path: Path, key_id: str) -> None:
    keys = {k: v for k, v in json.loads(path.read_text()).items()}
    if key_id in keys:
        raise crypto.KeyRingError(f"the ring already holds a key {key_id!r}")
    keys[key_id] = crypto.new_key()
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(keys, indent=2))
    tmp.replace(path)


def start(settings: Settings, key_id: str) -> Rotation:
    """The rotation in progress, or a new one after adding `key_id` to the ring."""
    progress = settings.data_dir / PROGRESS_FILE
    if progress.exists():
        saved = json.loads(progress.read_text())
        if not saved.get("finished"):
            return Rotation(saved["key"], saved["done"], saved.get("resealed", 0))
    add_key(ring_file(settings), key_id)
    rotation = Rotation(key_id)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rotation.save(progress)
    return rotation


async def _pages(db: Database, column: sa.Column[Any], last: Any, batch: int
                 ) -> AsyncIterator[list[tuple[list[Any], str]]]:
    """(primary key, value as stored) of the column's non-null values, in primary key
    order after `last`, `batch` at a time."""
    pks = list(column.table.primary_key.columns)
    raw = sa.cast(column, sa.Text)
    while True:
        query = sa.select(*pks, raw).where(column.is_not(None)).order_by(*pks).limit(batch)
        if last is not None:
            query = query.where(sa.tuple_(*pks) > sa.tuple_(
                *(last if isinstance(last, list) else [last])))
        async with db.engine.connect() as conn:
            rows = [(list(key), value) for *key, value in await conn.execute(query)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


async def _sealed_columns(db: Database) -> list[sa.Column[Any]]:
    """Every column of an existing table that holds sealed values."""
    importlib.import_module("llmdocs.models")  # every table on Base.metadata
    existing = await _tables(db)
    return [column for column in sealed_columns(Base.metadata, RESEALED)
            if column.table.name in existing]


async def _columns(db: Database, rotation: Rotation, ring: crypto.KeyRing,
                   batch: int, progress: Path, after: Callable[[], Awaitable[None]]) -> None:
    """Every sealed value of every column holding some; a value bound to its row is
    sealed again for the same row."""
    for column in await _sealed_columns(db):
        kind = column.type
        assert isinstance(kind, RESEALED)
        name = f"{column.table.name}.{column.name}"
        pks = list(column.table.primary_key.columns)
        async for rows in _pages(db, column, rotation.done.get(name), batch):
            async with db.engine.begin() as conn:
                for key, value in rows:
                    new = kind.renewed(value, ring, ":".join(map(str, key)))
                    if new is None:
                        continue
                    # only if unchanged meanwhile: a newer write is sealed already
                    await conn.execute(
                        sa.update(column.table)
                        .where(*(pk == k for pk, k in zip(pks, key, strict=True)),
                               sa.cast(column, sa.Text) == value)
                        .values({column.name: new}))
                    rotation.resealed += 1
            rotation.done[name] = rows[-1][0]
            rotation.save(progress)
            await after()


async def keys_in_use(settings: Settings, batch: int = 2000) -> dict[str, int]:
    """Key id → how many stored values need it (sealed columns and blobs): a full scan,
    for the compliance report; reads ciphertext only, so no ring is needed."""
    from llmdocs.services.docstore.blobs import SealedBlobStore, blob_store
    from llmdocs.services.docstore.models import VERSIONS
    from llmdocs.services.docstore.settings import DocStoreSettings

    counts: Counter[str] = Counter()
    db = Database(settings.database_url)
    try:
        for column in await _sealed_columns(db):
            async for rows in _pages(db, column, None, batch):
                counts.update(kid for _, value in rows for kid in key_ids_in(value))
        if VERSIONS.name in await _tables(db):
            store = blob_store(settings, DocStoreSettings())
            assert isinstance(store, SealedBlobStore)
            async for rows in _pages(db, VERSIONS.c.blob_key, None, batch):
                for _, key in rows:
                    blob = await store.inner.get(key)
                    if crypto.is_sealed(blob):
                        counts[crypto.key_id_of(blob)[0]] += 1
    finally:
        await db.dispose()
    return dict(counts)


def secrets_key_ids(settings: Settings) -> set[str]:
    """The ids of the secrets key used without a ring, which services keep besides it."""
    return ({crypto.DERIVED_KEY_ID} if not settings.embedded else
            set(crypto.generated_keys(settings.data_dir, create=False)))


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def _blobs(db: Database, settings: Settings, ring: crypto.KeyRing,
                 rotation: Rotation, batch: int,
                 progress: Path, after: Callable[[], Awaitable[None]]) -> None:
    from llmdocs.services.docstore.blobs import SealedBlobStore, blob_store
    from llmdocs.services.docstore.models import VERSIONS
    from llmdocs.services.docstore.settings import DocStoreSettings

    if VERSIONS.name not in await _tables(db):
        return
    configured = blob_store(settings, DocStoreSettings())
    assert isinstance(configured, SealedBlobStore)
    store = SealedBlobStore(configured.inner, ring)
    async for rows in _pages(db, VERSIONS.c.blob_key, rotation.done.get(BLOBS), batch):
        for _, key in rows:
            rotation.resealed += await store.reseal(key)
        rotation.done[BLOBS] = rows[-1][0]
        rotation.save(progress)
        await after()


async def rotate(settings: Settings, key_id: str, *, batch: int = 500,
                 after_batch: Callable[[], Awaitable[None]] | None = None) -> Rotation:
    """Run (or resume) a rotation to its end; `after_batch` runs after each saved batch."""
    rotation = start(settings, key_id)
    # the secrets key used before a ring was set opens what it sealed; its records too
    # are sealed anew
    ring = crypto.KeyRing.from_value(str(ring_file(settings)), settings.secrets_fallback)
    if ring.current != rotation.key:
        raise crypto.KeyRingError(f"the rotation in progress seals with {rotation.key!r}, "
                                  f"but the ring's last key is {ring.current!r}")
    # services seal with the new key once they re-read the ring: from then on, nothing
    # written behind the rotation's position needs it again
    await asyncio.sleep(crypto.KeyRing.REFRESH_SECONDS * 2)
    db = Database(settings.database_url, ring=ring)
    progress = settings.data_dir / PROGRESS_FILE

    async def nothing() -> None:
        return None

    try:
        await _columns(db, rotation, ring, batch, progress, after_batch or nothing)
        await _blobs(db, settings, ring, rotation, batch, progress, after_batch or nothing)
    finally:
        await db.dispose()
    rotation.finished = True
    rotation.save(progress)
    return rotation


cli = typer.Typer(name="keys", help="Encryption keys: rotate the ring.", no_args_is_help=True)


@cli.command("rotate")
def rotate_command(
    key_id: str = typer.Option(None, "--key-id", help="The new key's id (default: "
                               "k<UTC date and time>)."),
    batch: int = typer.Option(500, min=1, help="Records re-encrypted per transaction."),
) -> None:
    """Add a key as the last of the ring, then re-encrypt every record and blob with it;
    resumes a stopped rotation. When done, older keys may be removed from the ring."""
    from datetime import UTC, datetime

    from llmdocs.cli_support import console, err_console

    settings = Settings()
    key_id = key_id or datetime.now(UTC).strftime("k%Y%m%dT%H%M%S")
    try:
        rotation = asyncio.run(rotate(settings, key_id, batch=batch))
    except (crypto.KeyRingError, crypto.CryptoError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    older = [k for k in crypto.KeyRing.from_value(str(ring_file(settings))).key_ids
             if k != rotation.key]
    console.print(f"done: every record and blob is sealed with key {rotation.key!r} "
                  f"({rotation.resealed} re-encrypted); "
                  + (f"keys {', '.join(older)} may now be removed from the ring"
                     if older else "no other key is in the ring"))
