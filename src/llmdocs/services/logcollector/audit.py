"""The audit trail's store: records appended to hash chains (one per service), idempotent
on the record id, queried and exported, verified link by link, and aged out by whole
prefixes that leave an anchor, so what is kept still verifies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Row, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from llmdocs.core.db import Database, as_utc, utcnow
from llmdocs.core.events import Event
from llmdocs.core.sqlite import in_thread
from llmdocs.services.logcollector.models import AuditAnchor, AuditIdentity, AuditRecord
from llmdocs.services.logcollector.schemas import AuditBreak, AuditIn, AuditOut, Verification
from llmdocs.services.logcollector.service import valid_records

log = structlog.get_logger(__name__)
GENESIS = "0" * 64  # the `prev_hash` of a chain's first record
VERIFY_CHUNK = 1000  # records read per round-trip while verifying or exporting
# the fields a record's hash covers, in this order (with its prev_hash)
HASHED = ("record_id", "chain", "chain_seq", "time", "service", "actor", "actor_kind",
          "roles", "act", "client", "method", "route", "action", "resource_type",
          "resource_id", "space", "outcome", "correlation_id", "prev_hash")
TABLE = AuditRecord.__table__
# a record as shown: its pseudonymous actor with whom it stands for, while that is known
SHOWN = (select(TABLE, AuditIdentity.subject.label("identity"))
         .outerjoin(AuditIdentity, AuditIdentity.pseudonym == AuditRecord.actor))


@dataclass
class AuditQuery:
    """Filters of `GET /audit`; each is an exact match but the time range."""

    actor: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    service: str | None = None
    space: str | None = None
    outcome: int | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # the page cursor: records older than this seq
    limit: int = 100


def canonical_time(value: datetime) -> str:
    """One spelling of a time for the hash, whichever database handed it back."""
    return as_utc(value).isoformat(timespec="microseconds")


def record_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON (sorted keys, no spaces) of the hashed fields."""
    values = {key: fields[key] for key in HASHED}
    values["time"] = canonical_time(values["time"])
    for key in ("roles", "act"):  # stored as JSON text, hashed as the list it holds
        values[key] = json_list(values[key])
    body = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def json_list(stored: Any) -> Any:
    """A stored JSON list as the list; text that is none (an edited row) as itself."""
    if not isinstance(stored, str):
        return stored
    try:
        return json.loads(stored)
    except ValueError:
        return stored


def lock_key(chain: str) -> int:
    """A PostgreSQL advisory lock id per chain (signed 64 bit), apart from other locks."""
    return int.from_bytes(hashlib.sha256(f"llmdocs-audit:{chain}".encode()).digest()[:8],
                          "big", signed=True)


def audit_out(row: Row[Any] | AuditRecord) -> AuditOut:
    """A stored record as it is, unvalidated: an edited row is shown, never a 500."""
    fields: dict[str, Any] = {key: getattr(row, key) for key in AuditOut.model_fields
                              if key not in ("id", "time", "roles", "act")}
    for key in ("roles", "act"):
        value = json_list(getattr(row, key))
        fields[key] = value if isinstance(value, list) else [str(value)]
    identity = getattr(row, "identity", None)
    if identity is not None:
        fields["actor"] = identity
    return AuditOut.model_construct(id=row.record_id, time=as_utc(row.time), **fields)


class AuditStore:
    def __init__(self, database: Database,
                 conceal: Callable[[str], str] | None = None) -> None:
        """`conceal`: a person's keyed pseudonym (core.privacy), which the chained record
        carries instead of the person (kept apart in `AuditIdentity`); None keeps them."""
        self.database = database
        self.conceal = conceal
        self._postgres = database.dialect == "postgresql"

    def _actor(self, record: AuditIn, identities: dict[str, str]) -> str | None:
        """The actor a record is chained with: a person by pseudonym (noted in
        `identities`), a service or nobody as they are."""
        if self.conceal is None or record.actor is None or record.actor_kind == "service":
            return record.actor
        pseudonym = self.conceal(record.actor)
        identities[pseudonym] = record.actor
        return pseudonym

    async def _remember(self, conn: AsyncConnection, identities: dict[str, str]) -> None:
        if not identities:
            return
        upsert = postgresql.insert(AuditIdentity) if self._postgres else sqlite.insert(
            AuditIdentity)
        await conn.execute(upsert.on_conflict_do_nothing(), [
            {"pseudonym": p, "subject": s} for p, s in identities.items()])

    async def forget(self, pseudonym: str) -> int:
        """Forget whom `pseudonym` stands for, for good: its records keep the pseudonym
        alone (and verify as before), and one arriving later records no name. How many
        records now name nobody but the pseudonym (none when forgotten before)."""
        upsert = postgresql.insert(AuditIdentity) if self._postgres else sqlite.insert(
            AuditIdentity)
        async with self.database.engine.begin() as conn:
            forgotten = await conn.execute(update(AuditIdentity).where(
                AuditIdentity.pseudonym == pseudonym, AuditIdentity.subject.is_not(None))
                .values(subject=None))
            await conn.execute(upsert.values(pseudonym=pseudonym, subject=None)
                               .on_conflict_do_nothing())
            if not forgotten.rowcount:
                return 0
            return int(await conn.scalar(select(func.count()).where(
                AuditRecord.actor == pseudonym)) or 0)

    async def _lock(self, conn: AsyncConnection, chain: str) -> None:
        """Serialise appends to one chain across replicas until the transaction ends
        (SQLite has one writer at a time; the unique chain_seq backs both up)."""
        if self._postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": lock_key(chain)})

    async def _head(self, conn: AsyncConnection, chain: str) -> tuple[int, str]:
        """The number and hash the chain's next record follows."""
        last = (await conn.execute(
            select(AuditRecord.chain_seq, AuditRecord.hash).where(AuditRecord.chain == chain)
            .order_by(AuditRecord.chain_seq.desc()).limit(1))).first()
        if last is None:
            last = (await conn.execute(select(AuditAnchor.chain_seq, AuditAnchor.hash)
                                       .where(AuditAnchor.chain == chain))).first()
        return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)

    async def add(self, batches: Sequence[Event]) -> int:
        """Append the batches' records to their chains; ids already stored are skipped
        (a redelivered batch), so delivery at least once stores each exactly once."""
        records = sorted((r for b in batches for r in valid_records(b, AuditIn)),
                         key=lambda r: r.service)
        sent = sum(len(sent_records) for b in batches
                   if isinstance(sent_records := b.data.get("records"), list))
        if len(records) < sent:  # never silently: a record the trail should hold is gone
            log.error("audit records refused as malformed", refused=sent - len(records),
                      sources=sorted({b.source for b in batches}))
        stored = 0
        for chain, group in groupby(records, key=lambda r: r.service):
            stored += await self._append(chain, list(group))
        return stored

    async def _append(self, chain: str, records: list[AuditIn]) -> int:
        now = utcnow()
        async with self.database.engine.begin() as conn:
            await self._lock(conn, chain)
            ids = [r.id for r in records]
            known = set((await conn.scalars(select(AuditRecord.record_id)
                                            .where(AuditRecord.record_id.in_(ids)))).all())
            seq, prev = await self._head(conn, chain)
            rows: list[dict[str, Any]] = []
            identities: dict[str, str] = {}
            for record in records:
                if record.id in known:
                    continue
                known.add(record.id)
                seq += 1
                row = {"record_id": record.id, "chain": chain, "chain_seq": seq,
                       "time": record.time, "service": record.service,
                       "actor": self._actor(record, identities),
                       "actor_kind": record.actor_kind,
                       "roles": json.dumps(record.roles), "act": json.dumps(record.act),
                       "client": record.client, "method": record.method,
                       "route": record.route, "action": record.action,
                       "resource_type": record.resource_type,
                       "resource_id": record.resource_id, "space": record.space,
                       "outcome": record.outcome, "correlation_id": record.correlation_id,
                       "prev_hash": prev, "received_at": now}
                row["hash"] = prev = record_hash(row)
                rows.append(row)
            if rows:
                await self._remember(conn, identities)
                await conn.execute(insert(AuditRecord), rows)
        return len(rows)

    # --- queries ------------------------------------------------------------------

    def _where(self, q: AuditQuery) -> list[ColumnElement[bool]]:
        exact = {AuditRecord.resource_type: q.resource_type,
                 AuditRecord.resource_id: q.resource_id, AuditRecord.action: q.action,
                 AuditRecord.service: q.service, AuditRecord.space: q.space,
                 AuditRecord.outcome: q.outcome, AuditRecord.correlation_id: q.correlation_id}
        where = [column == value for column, value in exact.items() if value is not None]
        if q.actor is not None:  # a person by name: their pseudonym while it is theirs
            where.append((AuditRecord.actor == q.actor) | AuditRecord.actor.in_(
                select(AuditIdentity.pseudonym).where(AuditIdentity.subject == q.actor)))
        if q.since:
            where.append(AuditRecord.time >= q.since)
        if q.until:
            where.append(AuditRecord.time < q.until)
        if q.before is not None:
            where.append(AuditRecord.seq < q.before)
        return where

    async def page(self, q: AuditQuery) -> tuple[list[AuditOut], int | None]:
        """Newest first; the cursor is the seq the next page starts below."""
        query = (SHOWN.where(*self._where(q)).order_by(AuditRecord.seq.desc())
                 .limit(q.limit + 1))
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        items = [audit_out(row) for row in rows[:q.limit]]
        return items, items[-1].seq if len(rows) > q.limit else None

    async def export(self, q: AuditQuery) -> AsyncIterator[AuditOut]:
        """Every matching record, oldest first, read a chunk at a time."""
        after = 0
        while True:
            query = (SHOWN.where(*self._where(q), AuditRecord.seq > after)
                     .order_by(AuditRecord.seq).limit(VERIFY_CHUNK))
            async with self.database.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            for row in rows:
                yield audit_out(row)
            if len(rows) < VERIFY_CHUNK:
                return
            after = rows[-1].seq

    # --- verification -------------------------------------------------------------

    async def verify(self) -> Verification:
        """Walk every chain from its anchor; the first break names the record."""
        async with self.database.engine.connect() as conn:
            chains = sorted(set((await conn.scalars(select(AuditRecord.chain).distinct()))
                                .all()) | set((await conn.scalars(
                                    select(AuditAnchor.chain))).all()))
        checked = 0
        for chain in chains:
            found, count = await self._verify_chain(chain)
            checked += count
            if found is not None:
                return Verification(intact=False, chains=len(chains), checked=checked,
                                    first_break=found)
        return Verification(intact=True, chains=len(chains), checked=checked)

    async def _verify_chain(self, chain: str) -> tuple[AuditBreak | None, int]:
        async with self.database.engine.connect() as conn:
            anchor = (await conn.execute(select(AuditAnchor.chain_seq, AuditAnchor.hash)
                                         .where(AuditAnchor.chain == chain))).first()
        seq, prev = (int(anchor[0]), str(anchor[1])) if anchor is not None else (0, GENESIS)
        checked = 0
        while True:
            query = (select(TABLE).where(AuditRecord.chain == chain,
                                         AuditRecord.chain_seq > seq)
                     .order_by(AuditRecord.chain_seq).limit(VERIFY_CHUNK))
            with in_thread():  # hashes a whole chain: off the event loop on SQLite
                async with self.database.engine.connect() as conn:
                    rows = (await conn.execute(query)).all()
            for row in rows:
                checked += 1
                problem = _break(row, seq, prev)
                if problem is not None:
                    return AuditBreak(chain=chain, chain_seq=row.chain_seq, seq=row.seq,
                                      record_id=row.record_id, problem=problem[0],
                                      detail=problem[1]), checked
                seq, prev = row.chain_seq, row.hash
            if len(rows) < VERIFY_CHUNK:
                return None, checked

    # --- retention ----------------------------------------------------------------

    async def enforce_retention(self, max_age: timedelta) -> int:
        """Delete each chain's records older than `max_age`, as a whole prefix (a newer
        record keeps every one after it), and anchor the chain at the last one removed."""
        oldest = utcnow() - max_age
        async with self.database.engine.connect() as conn:
            chains = (await conn.scalars(select(AuditRecord.chain).distinct()
                                         .where(AuditRecord.time < oldest))).all()
        removed = 0
        for chain in chains:
            with in_thread():
                async with self.database.engine.begin() as conn:
                    await self._lock(conn, chain)
                    removed += await self._trim(conn, chain, oldest)
        return removed

    async def _trim(self, conn: AsyncConnection, chain: str, oldest: datetime) -> int:
        mine = AuditRecord.chain == chain
        young = await conn.scalar(select(func.min(AuditRecord.chain_seq))
                                  .where(mine, AuditRecord.time >= oldest))
        cut = (young - 1 if young is not None else
               await conn.scalar(select(func.max(AuditRecord.chain_seq)).where(mine)))
        last = (await conn.execute(select(AuditRecord.chain_seq, AuditRecord.hash)
                                   .where(mine, AuditRecord.chain_seq <= cut)
                                   .order_by(AuditRecord.chain_seq.desc()).limit(1))).first()
        if last is None:
            return 0
        values = {"chain": chain, "chain_seq": last[0], "hash": last[1],
                  "removed_at": utcnow()}
        upsert = (postgresql.insert(AuditAnchor) if self._postgres
                  else sqlite.insert(AuditAnchor)).values(values)
        await conn.execute(upsert.on_conflict_do_update(
            index_elements=["chain"],
            set_={k: upsert.excluded[k] for k in ("chain_seq", "hash", "removed_at")}))
        result = await conn.execute(delete(AuditRecord).where(
            mine, AuditRecord.chain_seq <= last[0]))
        return int(result.rowcount)


def _break(row: Row[Any], seq: int, prev: str) -> tuple[str, str] | None:
    """What is wrong with `row` after the record numbered `seq` whose hash is `prev`."""
    fields = dict(row._mapping)
    own_ok = record_hash(fields) == row.hash
    linked = row.prev_hash == prev
    if row.chain_seq > seq + 1:
        return "removed", (f"records {seq + 1} to {row.chain_seq - 1} of the chain are "
                           f"missing before record {row.record_id}")
    if not own_ok and not linked:
        return "inserted", (f"record {row.record_id} matches neither its own hash nor the "
                            "record before it: it was inserted")
    if not own_ok:
        return "changed", f"record {row.record_id} no longer matches its hash"
    if not linked:
        return "inserted", (f"record {row.record_id} does not follow record {seq}: it "
                            "was inserted (or the chain rewritten from here)")
    return None
