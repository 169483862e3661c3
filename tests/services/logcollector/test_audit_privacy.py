"""Audit records name people by pseudonym: whom it stands for is kept apart, so erasing
a person leaves the chain verifiable and shows only the pseudonym."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
from sqlalchemy import select

from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.privacy import pseudonym
from llmdocs.migrations import upgrade
from llmdocs.services.logcollector.audit import AuditQuery, AuditStore
from llmdocs.services.logcollector.models import AuditRecord
from services.logcollector.test_audit import batch, record


@pytest.fixture
async def store(database_url: str, settings: Settings) -> AsyncIterator[AuditStore]:
    database = Database(database_url)
    await database.migrate(upgrade)
    yield AuditStore(database, partial(pseudonym, settings))
    await database.dispose()


async def test_erasing_a_person_keeps_the_chain_and_shows_the_pseudonym(
        store: AuditStore, settings: Settings) -> None:
    alice, alias = "user:u1", pseudonym(settings, "user:u1")
    await store.add([batch("doc-store", *(record(n) for n in range(1, 5)),
                           record(5, actor="service:gateway", actor_kind="service"))])
    async with store.database.engine.connect() as conn:
        stored = set((await conn.scalars(select(AuditRecord.actor))).all())
    assert stored == {alias, pseudonym(settings, "user:u0"), "service:gateway"}

    shown, _ = await store.page(AuditQuery(actor=alice))
    assert [r.actor for r in shown] == [alice, alice]  # by name, while it is known
    assert await store.forget(alias) == 2
    assert await store.forget(alias) == 0  # again: nothing left to forget

    assert (await store.page(AuditQuery(actor=alice)))[0] == []  # her name finds none
    # a record of hers in flight at the erasure arrives: it is chained, never named
    await store.add([batch("doc-store", record(7))])
    assert (await store.page(AuditQuery(actor=alice)))[0] == []
    assert await store.forget(pseudonym(settings, "user:nobody")) == 0  # never seen
    shown, _ = await store.page(AuditQuery(actor=alias))
    assert [r.actor for r in shown] == [alias, alias, alias]
    exported = [r.actor async for r in store.export(AuditQuery())]
    assert alice not in exported and "user:u0" in exported
    assert (await store.verify()).intact
