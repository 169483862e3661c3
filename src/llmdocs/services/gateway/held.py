"""What the gateway holds about a person, for privacy requests: their usage rows (a
call's model, tokens and cost), and the budget and rate limit set for them. Usage rows
must stay for the accounts: an erasure keeps their numbers and replaces the person by
their pseudonym; their own budget and limit go. The gateway keeps no prompt nor answer
but in its response cache (keyed by the request, not by who sent it), which the
erasure's scrubbing empties."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from llmdocs.core.privacy import Erasure, Records, as_record, rowcount
from llmdocs.services.gateway.models import Budget, RateLimit, UsageRecord
from llmdocs.services.gateway.service import GatewayService

PER_USER: tuple[type[Budget] | type[RateLimit], ...] = (Budget, RateLimit)


class GatewayData:
    """The gateway's `SubjectData`."""

    def __init__(self, gateway: GatewayService) -> None:
        self.gateway = gateway
        self.database = gateway.budgets.database

    async def export(self, subject: str) -> Records:
        await self.gateway.recorder.flush()  # the calls made just before are in it
        async with self.database.session() as session:
            usage = (await session.execute(select(UsageRecord).where(
                UsageRecord.user_id == subject).order_by(UsageRecord.created_at))).scalars()
            records: Records = {"usage": [as_record(row) for row in usage]}
            for model, stem in zip(PER_USER, ("budgets", "rate_limits"), strict=True):
                rows = (await session.execute(select(model).where(
                    model.scope == "user", model.subject == subject))).scalars()
                records[stem] = [as_record(row) for row in rows]
        return records

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        await self.gateway.recorder.flush()
        async with self.database.transaction() as session:
            usage = await session.execute(update(UsageRecord).where(
                UsageRecord.user_id == erasure.subject).values(user_id=erasure.pseudonym))
            budgets, limits = [await session.execute(delete(model).where(
                model.scope == "user", model.subject == erasure.subject))
                for model in PER_USER]
        await self.gateway.budgets.cache.delete(f"gw:budget:user:{erasure.subject}",
                                                f"gw:limit:user:{erasure.subject}")
        return {"usage rows pseudonymised": rowcount(usage),
                "budgets deleted": rowcount(budgets), "rate limits deleted": rowcount(limits)}
