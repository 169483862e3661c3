"""What the notification service holds about a person: their subscriptions (with
deliveries, attempts, groups and rates: cascade), their in-app inbox, alert conditions
naming them (a budget of theirs); all deleted on erasure: none is a record that must
stay."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from llmdocs.core.db import Database
from llmdocs.core.privacy import Erasure, Records, forget_keys
from llmdocs.core.pseudonymise import dropped, naming
from llmdocs.services.notification.alerts import Condition
from llmdocs.services.notification.models import (
    Delivery,
    IdempotencyKey,
    InboxItem,
    Subscription,
)

SUBSCRIPTION_FIELDS = ("id", "owner", "space", "events", "filters", "kind", "channel",
                       "status", "paused_reason", "created_at")
INBOX_FIELDS = ("id", "owner", "kind", "title", "text", "severity", "link", "created_at",
                "read_at")


def _naming_condition(subject: str) -> sa.ColumnElement[bool]:
    return naming(Condition.key, subject) | naming(Condition.event, subject)


class NotificationSubjectData:
    """The notification service's part of a privacy request (core.privacy)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def export(self, subject: str) -> Records:
        async with self.db.session() as session:
            subscriptions = (await session.scalars(sa.select(Subscription).where(
                Subscription.owner == subject))).all()
            deliveries = (await session.scalars(sa.select(Delivery).where(
                Delivery.subscription_id.in_([s.id for s in subscriptions])))).all()
            inbox = (await session.scalars(sa.select(InboxItem).where(
                InboxItem.owner == subject))).all()
            conditions = (await session.scalars(sa.select(Condition).where(
                _naming_condition(subject)))).all()
        records: Records = jsonable_encoder({
            "subscriptions": [{f: getattr(s, f) for f in SUBSCRIPTION_FIELDS}
                              for s in subscriptions],
            "deliveries": [{"id": d.id, "subscription_id": d.subscription_id,
                            "kind": d.kind, "payload": d.payload, "status": d.status}
                           for d in deliveries],
            "inbox": [{f: getattr(i, f) for f in INBOX_FIELDS} for i in inbox],
            "alert_conditions": [{"rule": c.rule, "key": c.key, "status": c.status,
                                  "event": c.event} for c in conditions]})
        return records

    async def erase(self, erasure: Erasure) -> dict[str, int]:
        subject = erasure.subject
        async with self.db.transaction() as session:
            done = {
                "subscriptions deleted": await dropped(session, sa.delete(Subscription).where(
                    Subscription.owner == subject)),
                "inbox items deleted": await dropped(session, sa.delete(InboxItem).where(
                    InboxItem.owner == subject)),
                "alert conditions deleted": await dropped(session, sa.delete(Condition).where(
                    _naming_condition(subject))),
            }
        return done | {"keyed answers deleted": await forget_keys(self.db, IdempotencyKey,
                                                                   subject)}


def subject_data(app: FastAPI) -> NotificationSubjectData:
    return NotificationSubjectData(app.state.resources.database)
