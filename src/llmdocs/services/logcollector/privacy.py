"""What the log-collector holds about a person: log records and events naming them
(deleted on erasure, and so are the bus's own copies), and audit records (kept: they
name the person by pseudonym, and only whom it stands for is erased)."""

from __future__ import annotations

import json

from fastapi import FastAPI
from sqlalchemy import ColumnElement, delete, or_, select

from llmdocs.core.audit import audit_stream
from llmdocs.core.db import Database
from llmdocs.core.events import EventBus
from llmdocs.core.logship import logs_stream
from llmdocs.core.privacy import Erasure, Records
from llmdocs.core.pseudonymise import dropped
from llmdocs.core.sqlite import in_thread
from llmdocs.services.logcollector.audit import AuditQuery, AuditStore
from llmdocs.services.logcollector.models import CollectedEvent, CollectedLog
from llmdocs.services.logcollector.service import log_out


def as_json(subject: str) -> set[str]:
    """The subject as a JSON string value, escaped or not: an event names the person
    `user:a` so, never as a part of `user:ab` (whose events must stay)."""
    return {json.dumps(subject), json.dumps(subject, ensure_ascii=False)}


def naming_log(subject: str) -> ColumnElement[bool]:
    """A log record naming the person: in its text (a name within a sentence), or as a
    value of its attributes."""
    return or_(CollectedLog.message.contains(subject, autoescape=True),
               *(CollectedLog.attributes.contains(form, autoescape=True)
                 for form in as_json(subject)))


def naming_event(subject: str) -> ColumnElement[bool]:
    return or_(*(CollectedEvent.envelope.contains(form, autoescape=True)
                 for form in as_json(subject)))


class LogSubjectData:
    """The log-collector's part of a privacy request (core.privacy)."""

    def __init__(self, database: Database, audit: AuditStore, events: EventBus,
                 streams: list[str]) -> None:
        self.database = database
        self.audit = audit
        self.events = events
        self.streams = streams

    async def export(self, subject: str) -> Records:
        async with self.database.session() as session:
            logs = (await session.scalars(select(CollectedLog).where(naming_log(subject))
                                          .order_by(CollectedLog.seq))).all()
            events = (await session.scalars(
                select(CollectedEvent).where(naming_event(subject))
                .order_by(CollectedEvent.seq))).all()
        audit = [record.model_dump(mode="json")
                 async for record in self.audit.export(AuditQuery(actor=subject))]
        return {"logs": [log_out(row).model_dump(mode="json") for row in logs],
                "events": [json.loads(row.envelope) for row in events],
                "audit": audit}

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        subject = erasure.subject
        with in_thread():  # scans every stored log record and event
            async with self.database.transaction() as session:
                logs = await dropped(session, delete(CollectedLog).where(naming_log(subject)))
                events = await dropped(session, delete(CollectedEvent).where(
                    naming_event(subject)))
        return {"log records deleted": logs, "events deleted": events,
                "bus events deleted": sum([await self.events.forget(form, self.streams)
                                           for form in as_json(subject)]),
                "audit records pseudonymised": await self.audit.forget(erasure.pseudonym)}


def subject_data(app: FastAPI) -> LogSubjectData:
    """Built by the kernel once the lifespan made the stores."""
    settings = app.state.settings
    streams = [settings.events_stream, logs_stream(settings), audit_stream(settings)]
    return LogSubjectData(app.state.resources.database, app.state.auditstore,
                          app.state.resources.events, streams)
