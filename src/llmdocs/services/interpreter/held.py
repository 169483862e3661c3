"""What the interpreter holds about a person, for privacy requests: their executions
(each a query and its answer), their conversation sessions, and the answers kept for
their retries. All of it is theirs alone: an erasure deletes it."""

from __future__ import annotations

from sqlalchemy import delete, select

from llmdocs.core.db import Database
from llmdocs.core.privacy import Erasure, Records, as_record, forget_keys, rowcount
from llmdocs.services.interpreter.models import Execution, IdempotencyKey, Session


class InterpreterData:
    """The interpreter's `SubjectData`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def export(self, subject: str) -> Records:
        async with self.database.session() as session:
            executions = (await session.execute(select(Execution).where(
                Execution.user_id == subject).order_by(Execution.created_at))).scalars()
            out = [as_record(row, ("interpretation", "result")) for row in executions]
            sessions = (await session.execute(select(Session).where(
                Session.user_id == subject).order_by(Session.updated_at))).scalars()
            return {"executions": out,
                    "sessions": [as_record(row, ("last_request",)) for row in sessions]}

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        async with self.database.transaction() as session:
            executions = await session.execute(delete(Execution).where(
                Execution.user_id == erasure.subject))
            sessions = await session.execute(delete(Session).where(
                Session.user_id == erasure.subject))
        return {"executions deleted": rowcount(executions),
                "sessions deleted": rowcount(sessions),
                "kept answers deleted": await forget_keys(self.database, IdempotencyKey,
                                                          erasure.subject)}
