"""Grouping: the first alert of a kind (its `group_key`) goes out at once and opens a
window; its repeats within the window, for the same subscription, are kept as deliveries
of status `grouped` (shown by GET /deliveries, never sent alone) and counted on one
summary sent when the window closes: "payments-api unhealthy, 14 times in 5 minutes"
(its `repeats`: 14, the first included)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, as_utc
from llmdocs.core.ids import new_id
from llmdocs.services.notification.models import Delivery

GROUPED = "grouped"  # a delivery folded into its window's summary


class Group(Base):
    """One subscription's window for one kind of alert."""

    __tablename__ = "notification_groups"

    subscription_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
        primary_key=True)
    group_key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    title: Mapped[str] = mapped_column(sa.Text())  # the first alert's
    summary_id: Mapped[str | None] = mapped_column(sa.String(36))  # its pending summary


def window_words(seconds: float) -> str:
    """5 minutes, 1 minute, 90 seconds."""
    value, unit = (seconds / 60, "minute") if seconds >= 60 and not seconds % 60 else (
        seconds, "second")
    return f"{value:g} {unit}" + ("" if value == 1 else "s")


class Grouping:
    def __init__(self, window_seconds: float) -> None:
        self.window = timedelta(seconds=window_seconds)

    async def fold(self, session: AsyncSession, rows: list[dict[str, Any]],
                   now: datetime) -> list[dict[str, Any]]:
        """The delivery rows to insert: a repeat inside an open window becomes `grouped`
        and counted on the window's summary (made with the first repeat, sent when the
        window closes). A row already recorded (a redelivered event) counts nothing."""
        if not self.window or not any(row["group_key"] for row in rows):
            return rows
        known: set[tuple[str, str]] = {(n, s) for n, s in (await session.execute(sa.select(
            Delivery.notification_id, Delivery.subscription_id).where(
            Delivery.notification_id.in_({row["notification_id"] for row in rows})))).all()}
        out: list[dict[str, Any]] = []
        made: dict[str, dict[str, Any]] = {}  # summaries of this batch, not yet inserted
        for row in rows:
            key = (row["notification_id"], row["subscription_id"])
            if row["group_key"] and key not in known:
                known.add(key)
                out += await self._place(session, row, now, made)
            else:
                out.append(row)
        return out

    async def _place(self, session: AsyncSession, row: dict[str, Any], now: datetime,
                     made: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        group = await session.get(Group, (row["subscription_id"], row["group_key"]),
                                  with_for_update=True)
        if group is None or as_utc(group.opened_at) + self.window <= now:
            title = str(row["payload"].get("title", ""))
            if group is None:
                session.add(Group(subscription_id=row["subscription_id"],
                                  group_key=row["group_key"], opened_at=now, title=title,
                                  summary_id=None))
            else:
                group.opened_at, group.title, group.summary_id = now, title, None
            return [row]  # the first of a new window goes out at once
        row = {**row, "status": GROUPED}
        if group.summary_id in made:  # made for an earlier repeat of this batch
            pending = made[group.summary_id]
            pending["repeats"] += 1
            pending["payload"] = self._summary(row["payload"], group, pending["repeats"])
            return [row]
        summary = None if group.summary_id is None else await session.get(
            Delivery, group.summary_id, with_for_update=True)
        if summary is not None and summary.status == "pending" and summary.lease is None:
            summary.repeats += 1
            summary.payload = self._summary(row["payload"], group, summary.repeats)
            return [row]
        # the first repeat: the summary goes out when the window closes
        opened = as_utc(group.opened_at)
        group.summary_id = new_id()
        made[group.summary_id] = {
            **row, "id": group.summary_id, "status": "pending", "repeats": 2,
            "notification_id": _summary_id(row, opened),
            "payload": self._summary(row["payload"], group, 2),
            "next_attempt_at": opened + self.window}
        return [row, made[group.summary_id]]

    def _summary(self, payload: dict[str, Any], group: Group, times: int
                 ) -> dict[str, Any]:
        """The latest alert, titled with how often it came in the window, the first
        (sent alone) included."""
        words = window_words(self.window.total_seconds())
        return {**payload, "title": f"{group.title}, {times} times in {words}",
                "text": f"{group.title}: {times} times in {words} (the first was sent "
                        f"alone at {as_utc(group.opened_at):%H:%M:%S} UTC; the latest: "
                        f"{payload.get('text', '')})",
                "grouped": {"times": times, "window_seconds": self.window.total_seconds(),
                            "first_at": as_utc(group.opened_at).isoformat()}}


def _summary_id(row: dict[str, Any], opened: datetime) -> str:
    digest = hashlib.sha256(
        f"{row['subscription_id']}|{row['group_key']}|{opened.isoformat()}".encode())
    return f"group:{digest.hexdigest()[:40]}"
