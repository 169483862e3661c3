"""Idempotency keys (the IETF Idempotency-Key draft): a request sent again with the
same key and body gets the first answer instead of running again; with another body
it is refused, and while the first is still running the retry is told so. Keys are
the caller's own and kept 24 hours. No HTTP here: an answer is a status and a body."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from llmdocs.core.db import Database, utcnow
from llmdocs.core.ids import new_id
from llmdocs.services.interpreter.errors import KeyInUse, KeyReused
from llmdocs.services.interpreter.models import IdempotencyKey

KEPT = timedelta(hours=24)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """The right to carry out a keyed request, or the first answer to replay."""

    principal: str
    key: str
    token: str
    replay: Answer | None = None


def request_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, database: Database, abandoned_after: timedelta) -> None:
        self.database = database
        # a claim this old without an answer: its request died with its process
        self.abandoned_after = abandoned_after

    async def claim(self, principal: str, key: str, digest: str) -> Claim:
        """Ours to carry out (a new key, or one expired or abandoned), or the first
        answer; a KeyReused for another request, a KeyInUse while the first runs."""
        now, token = utcnow(), new_id()
        insert = (postgresql.insert(IdempotencyKey) if self.database.dialect == "postgresql"
                  else sqlite.insert(IdempotencyKey))
        mine = IdempotencyKey.principal == principal, IdempotencyKey.key == key
        async with self.database.transaction() as session:
            await session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.created_at < now - KEPT))
            await session.execute(insert.values(
                principal=principal, key=key, request_hash=digest, claim=token,
                created_at=now).on_conflict_do_nothing())
            # an abandoned claim of the same request is taken over
            await session.execute(update(IdempotencyKey).where(
                *mine, IdempotencyKey.request_hash == digest,
                IdempotencyKey.status.is_(None),
                IdempotencyKey.created_at < now - self.abandoned_after,
            ).values(claim=token, created_at=now))
            row = (await session.execute(select(IdempotencyKey).where(*mine))).scalar_one()
        if row.request_hash != digest:
            raise KeyReused("This Idempotency-Key was used for a different request; "
                            "send a new key with a new request.",
                            errors=[{"field": "Idempotency-Key", "message": "reused for "
                                     "another request"}])
        if row.claim == token:
            return Claim(principal, key, token)
        if row.status is None or row.response is None:
            raise KeyInUse("The request with this Idempotency-Key is still being carried "
                           "out; ask again once it has ended.")
        return Claim(principal, key, token, Answer(row.status, row.response["body"],
                                                   row.response["headers"]))

    async def answer(self, claim: Claim, answer: Answer) -> None:
        """Keep the answer to replay it."""
        async with self.database.transaction() as session:
            await session.execute(update(IdempotencyKey).where(self._held(claim)).values(
                status=answer.status,
                response={"body": answer.body, "headers": answer.headers}))

    async def release(self, claim: Claim) -> None:
        """Forget the key: its request started nothing, or failed in a way a retry
        should not be told again (an outage)."""
        async with self.database.transaction() as session:
            await session.execute(delete(IdempotencyKey).where(self._held(claim)))

    @staticmethod
    def _held(claim: Claim) -> ColumnElement[bool]:
        return and_(IdempotencyKey.principal == claim.principal,
                    IdempotencyKey.key == claim.key, IdempotencyKey.claim == claim.token)

