"""Idempotency keys (the IETF Idempotency-Key draft) for a service's creating POSTs: a
request sent again with the same key and body gets the first answer instead of running
again; with another body it is a 422, and while the first still runs a 409. Keys are
the caller's own, kept 24 hours, in a table of the service's own (`KeyRecord`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ColumnElement, DateTime, Integer, String, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Database, SealedJSON, utcnow
from llmdocs.core.errors import (
    PROBLEM_JSON,
    Problem,
    outage_status,
    outlasting,
    problem_body,
)
from llmdocs.core.ids import new_id

log = structlog.get_logger(__name__)
KEPT = timedelta(hours=24)
# a claim unanswered this long died with its replica (a request that takes longer passes
# its own: see the interpreter's and the orchestrator's)
ABANDONED_AFTER = timedelta(minutes=10)

IdempotencyKeyHeader: Any = Header(
    None, alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
    description="Send the request again with the same key to get its first answer "
                "instead of a second run (kept 24 h)")


class KeyRecord:
    """The columns of a service's key table (mixed into a mapped class of its own): a
    request claimed while it runs (no status yet), then the answer to replay."""

    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str] = mapped_column(String(36))  # the request carrying it out
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the answer replayed, which holds what the request carried: sealed with a ring
    response: Mapped[dict[str, Any] | None] = mapped_column(SealedJSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as kept: status, JSON body and the headers that matter to it."""

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
    """The keys of one table; `abandoned_after`: a claim this old with no answer died
    with its process, and the same request may take it over."""

    def __init__(self, database: Database, table: type[KeyRecord],
                 abandoned_after: timedelta = ABANDONED_AFTER) -> None:
        self.database = database
        self.table: Any = table  # a mapped class: its columns are SQL expressions
        self.abandoned_after = abandoned_after
        self.settling: set[asyncio.Task[None]] = set()

    async def once(self, principal: str, key: str | None, canonical: str,
                   carry_out: Callable[[], Awaitable[Answer]]) -> Answer:
        """`carry_out`'s answer, or with `key`, the first answer to the same request.
        A request that raised (refused before it started anything) or met an outage
        (5xx) leaves no key: its retry runs afresh."""
        if key is None:
            return await carry_out()
        token = new_id()
        try:
            claim = await self._claim(principal, key, request_hash(canonical), token)
        except Problem:
            raise
        except BaseException:  # the claim may be written though its commit was not seen
            await self._settle(Claim(principal, key, token), None)
            raise
        if claim.replay is not None:
            return claim.replay
        try:
            answer = await carry_out()
        except BaseException:
            await self._settle(claim, None)
            raise
        await self._settle(claim, answer if answer.status < 500 else None)
        return answer

    async def _settle(self, claim: Claim, answer: Answer | None) -> None:
        """Keep the answer, or with none release the claim; while the database is down,
        again in the background until it is back: a claim left behind would answer 409
        to every retry, and a released claim of a kept answer would run it twice."""
        try:
            await self._write_end(claim, answer)
        except Exception as exc:
            if outage_status(exc) is None:
                raise
            task = asyncio.create_task(self._settle_later(claim, answer))
            self.settling.add(task)
            task.add_done_callback(self.settling.discard)

    async def _settle_later(self, claim: Claim, answer: Answer | None) -> None:
        try:
            await outlasting(lambda: self._write_end(claim, answer),
                             self.abandoned_after.total_seconds(), "idempotency key")
        except Exception:
            log.exception("idempotency key left unsettled", key=claim.key)

    async def _write_end(self, claim: Claim, answer: Answer | None) -> None:
        if answer is None:
            await self._release(claim)
        else:
            await self._keep(claim, answer)

    async def forget(self, principal: str, key: str) -> None:
        """Let the key's next request run afresh: its kept answer no longer holds. A
        claim still being carried out stays."""
        table = self.table
        async with self.database.transaction() as session:
            await session.execute(delete(table).where(
                table.principal == principal, table.key == key, table.status.is_not(None)))

    async def _claim(self, principal: str, key: str, digest: str, token: str) -> Claim:
        """Ours to carry out (a new key, or one expired or abandoned), or the first
        answer; a 422 for another request, a 409 while the first runs."""
        now, table = utcnow(), self.table
        insert = (postgresql.insert(table) if self.database.dialect == "postgresql"
                  else sqlite.insert(table))
        mine = table.principal == principal, table.key == key
        async with self.database.transaction() as session:
            await forget_expired(session, table, now)
            await session.execute(insert.values(
                principal=principal, key=key, request_hash=digest, claim=token,
                created_at=now).on_conflict_do_nothing())
            await session.execute(update(table).where(
                *mine, table.request_hash == digest, table.status.is_(None),
                table.created_at < now - self.abandoned_after,
            ).values(claim=token, created_at=now))
            row = (await session.execute(select(table).where(*mine))).scalar_one()
        if row.request_hash != digest:
            raise Problem(422, "This Idempotency-Key was used for a different request; "
                          "send a new key with a new request.", errors=[{
                              "field": "Idempotency-Key",
                              "message": "reused for another request"}])
        if row.claim == token:
            return Claim(principal, key, token)
        if row.status is None or row.response is None:
            raise Problem(409, "The request with this Idempotency-Key is still being "
                          "carried out; ask again once it has ended.")
        return Claim(principal, key, token, Answer(row.status, row.response["body"],
                                                   row.response["headers"]))

    async def _keep(self, claim: Claim, answer: Answer) -> None:
        async with self.database.transaction() as session:
            await session.execute(update(self.table).where(self._held(claim)).values(
                status=answer.status,
                response={"body": answer.body, "headers": answer.headers}))

    async def _release(self, claim: Claim) -> None:
        async with self.database.transaction() as session:
            await session.execute(delete(self.table).where(self._held(claim)))

    def _held(self, claim: Claim) -> ColumnElement[bool]:
        table = self.table
        return and_(table.principal == claim.principal, table.key == claim.key,
                    table.claim == claim.token)


async def forget_expired(session: AsyncSession, table: Any, now: datetime) -> None:
    """Drop the keys of `table` older than KEPT: their requests are new ones again."""
    await session.execute(delete(table).where(table.created_at < now - KEPT))


@dataclass(frozen=True)
class Keyed:
    """A creating request with its Idempotency-Key, as a route takes it (`keyed`)."""

    request: Request
    key: str | None

    async def once(self, keys: IdempotencyKeys, principal: str, body: BaseModel,
                   carry_out: Callable[[], Awaitable[Answer]]) -> Response:
        """`carry_out`'s answer, once per key: the request is its method, path, query
        and body (see `IdempotencyKeys.once`)."""
        url = self.request.url
        canonical = f"{self.request.method} {url.path}?{url.query} {body.model_dump_json()}"
        return answered(self.request, await keys.once(principal, self.key, canonical,
                                                      carry_out))


async def keyed(request: Request, key: str | None = IdempotencyKeyHeader) -> Keyed:
    return Keyed(request, key)


KeyedRequest = Annotated[Keyed, Depends(keyed)]  # a route's: the header in its OpenAPI


def answer_of(model: BaseModel, status: int) -> Answer:
    return Answer(status, model.model_dump(mode="json", by_alias=True), {})


async def made(creating: Awaitable[BaseModel], status: int = 201) -> Answer:
    """The answer of a route that creates what `creating` returns."""
    return answer_of(await creating, status)


def answered(request: Request, answer: Answer) -> Response:
    """The answer as sent: JSON, or a problem document about this request."""
    if answer.status < 400:
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
    return JSONResponse({**answer.body, "instance": request.url.path},
                        status_code=answer.status, headers=answer.headers,
                        media_type=PROBLEM_JSON)


def problem_answer(problem: Problem) -> Answer:
    return Answer(problem.status, problem_body(problem), problem.headers)
