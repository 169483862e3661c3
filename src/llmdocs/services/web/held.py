"""What the portal holds about a person, for privacy requests: their signed-in sessions
(who, with which rights, until when). A session is theirs alone: an erasure ends it."""

from __future__ import annotations

from sqlalchemy import delete, select

from llmdocs.core.db import Database
from llmdocs.core.privacy import Erasure, Records, as_record, rowcount
from llmdocs.services.web.models import WebSession


class WebData:
    """The portal's `SubjectData`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def export(self, subject: str) -> Records:
        async with self.database.session() as session:
            rows = (await session.execute(select(WebSession).where(
                WebSession.subject == subject).order_by(WebSession.created_at))).scalars()
            # the id is a hash of the cookie: of no use to the person, and a credential's
            return {"sessions": [{k: v for k, v in as_record(row).items() if k != "id"}
                                 for row in rows]}

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        """Sign the person out everywhere; the scrub after an erasure empties the cache
        that would otherwise keep a session alive for its last seconds."""
        async with self.database.transaction() as session:
            ended = await session.execute(delete(WebSession).where(
                WebSession.subject == erasure.subject))
        return {"sessions ended": rowcount(ended)}
