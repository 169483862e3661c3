"""The delivery engine. The consumer turns each bus event, through the rules, into
notifications and writes a delivery row per matching subscription (idempotently: a
redelivered event writes none twice) before the event is acked; the sender claims due
deliveries under a lease (replicas share them; a crashed sender's come back when its
lease runs out), sends each through its channel and records the attempt: delivered,
retried later with exponential backoff and jitter, or dead after the last attempt. A
subscription failing `pause_after_failures` times in a row is paused, saying why."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from llmdocs.core.crypto import CryptoError
from llmdocs.core.db import utcnow
from llmdocs.core.events import Event
from llmdocs.core.ids import new_id
from llmdocs.core.spaces import SpaceView
from llmdocs.services.notification.audience import Audience
from llmdocs.services.notification.channels import DeliveryOutcome, Message, envelope
from llmdocs.services.notification.grouping import Grouping
from llmdocs.services.notification.models import Attempt, Delivery, Subscription
from llmdocs.services.notification.rules import Notification, Rule
from llmdocs.services.notification.service import Notifications
from llmdocs.services.notification.settings import NotificationSettings
from llmdocs.services.notification.throttle import Throttle

log = structlog.get_logger(__name__)

ERROR_CHARS = 500  # of an attempt's error, kept


def webhook_id(notification_id: str, subscription_id: str) -> str:
    """The message id a receiver sees: the same on every attempt and replay."""
    digest = hashlib.sha256(f"{notification_id}|{subscription_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def capped(payload: dict[str, Any], limit: int) -> dict[str, Any]:
    """The payload within `limit` bytes of JSON: event data goes first, then the text."""
    if _size(payload) <= limit:
        return payload
    note = {"truncated": True, "bytes": _size(payload)}
    event = {**payload.get("event", {}), "data": note}
    payload = {**payload, "data": note, "event": event}
    over = _size(payload) - limit
    if over > 0:
        text = str(payload.get("text", ""))
        payload["text"] = text[:max(len(text) - over - 1, 0)] + "…"
    return payload


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":")).encode())


def backoff(config: NotificationSettings, attempts: int, asked: float | None) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from
    `backoff_seconds` up to the maximum, ± jitter so failed receivers are not hit by
    every sender at once; at least what the receiver asked for (Retry-After)."""
    wait = min(config.backoff_seconds * 2 ** (attempts - 1), config.backoff_max_seconds)
    wait *= 1 + random.uniform(-config.jitter, config.jitter)  # noqa: S311  # nosec B311: jitter, not crypto
    return float(max(wait, asked or 0.0))


def space_of(n: Notification) -> str | None:
    """The space a notification is about: its event's (the envelope's), else its own."""
    return n.event.space or n.space


class Claimed(NamedTuple):
    """A delivery leased to this sender, its subscription, and its attempt's number."""

    delivery: Delivery
    subscription: Subscription
    number: int  # from 1, counting every round


class Engine:
    def __init__(self, config: NotificationSettings, notifications: Notifications,
                 rules: Sequence[Rule], audience: Audience, grouping: Grouping | None = None,
                 throttle: Throttle | None = None) -> None:
        self.config = config
        self.grouping = grouping or Grouping(0)
        self.throttle = throttle
        self.notifications = notifications
        self.audience = audience
        self.database = notifications.database
        self.rules = list(rules)
        self._due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.concurrency)
        notifications.wake = self._due.set

    # consuming: events → notifications → delivery rows

    async def on_events(self, events: list[Event]) -> None:
        """Every rule's notifications of a read's events, recorded in one transaction;
        raising leaves the events unacked, so they come again (one by one: nothing is
        lost, nothing recorded twice)."""
        found: list[Notification] = []
        for event in events:
            for rule in self.rules:
                if rule.types is None or event.type in rule.types:
                    found.extend(await rule.evaluate(event))
        await self.record(found)

    async def record(self, found: Sequence[Notification]) -> int:
        """A pending delivery per notification and matching subscription whose owner may
        read the notification's space (paused ones too: they go out once resumed); how
        many were new."""
        if not found:
            return 0
        async with self.database.transaction() as session:
            subscriptions = (await session.execute(sa.select(
                Subscription.id, Subscription.events, Subscription.filters,
                Subscription.owner))).all()
        matched = [(n, sid, owner) for n in found for sid, events, filters, owner
                   in subscriptions if n.matches(events, filters)]
        views: dict[str, SpaceView] = {}
        for n, _, owner in matched:  # owners asked once per read, and only when needed
            if space_of(n) is not None and owner not in views:
                views[owner] = await self.audience.view_of(owner)
        now = utcnow()
        rows = [
            {"id": new_id(), "subscription_id": sid, "notification_id": n.id,
             "kind": n.kind, "group_key": n.group_key, "repeats": 1,
             "payload": capped(envelope(n), self.config.max_body_bytes),
             "status": "pending", "attempts": 0, "next_attempt_at": now, "lease": None,
             "lease_until": None, "last_error": None, "created_at": now,
             "delivered_at": None}
            for n, sid, owner in matched
            if (space := space_of(n)) is None or views[owner].may_read(space)]
        if not rows:
            return 0
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        insert = dialect.insert(Delivery).on_conflict_do_nothing(
            index_elements=["notification_id", "subscription_id"])
        async with self.database.transaction() as session:
            rows = await self.grouping.fold(session, rows, now)
            result = await session.execute(insert, rows)
        self._due.set()
        return int(getattr(result, "rowcount", 0) or 0)

    # sending: due deliveries → channels → attempts

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send_loop(), name="notification:send"),
                       asyncio.create_task(self._tick_loop(), name="notification:tick")]

    async def stop(self) -> None:
        """Stop claiming; let sends in flight finish (up to one send's timeout), so a
        clean shutdown leaves no lease to wait for."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        if self._sending:
            _, late = await asyncio.wait(self._sending,
                                         timeout=self.config.send_timeout_seconds)
            for task in late:
                task.cancel()

    async def _send_loop(self) -> None:
        while True:
            try:
                claimed = await self.claim(self.config.concurrency)
            except Exception as exc:  # the database is down: try again later
                log.warning("claiming deliveries failed", error=repr(exc))
                claimed = []
            for one in claimed:
                await self._slots.acquire()
                task = asyncio.create_task(self._send_one(one))
                self._sending.add(task)
                task.add_done_callback(self._sent)
            if len(claimed) < self.config.concurrency:
                self._due.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._due.wait(), self.config.poll_seconds)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._slots.release()

    async def _tick_loop(self) -> None:
        """Time-based rules ("unhealthy for more than N seconds"), and retention."""
        forgotten_at = time.monotonic()
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            for rule in self.rules:
                try:
                    await self.record(await rule.tick(utcnow()))
                except Exception:
                    log.exception("alert rule tick failed", rule=rule.name)
            if time.monotonic() - forgotten_at >= self.config.retention_interval_seconds:
                forgotten_at = time.monotonic()
                await self._forget()

    async def _forget(self) -> None:
        before = utcnow() - timedelta(days=self.config.retention_days)
        try:
            removed = await self.notifications.forget(before)
        except Exception as exc:  # the database is down: next time
            log.warning("notification retention failed", error=repr(exc))
            return
        if any(removed.values()):
            log.info("notification retention applied", **removed)

    async def claim(self, limit: int) -> list[Claimed]:
        """Up to `limit` due deliveries of active subscriptions, leased to this sender
        (the conditional update lets one replica win each), with what sending needs."""
        now, lease = utcnow(), new_id()
        free = sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
        last = (sa.select(sa.func.max(Attempt.number))
                .where(Attempt.delivery_id == Delivery.id).scalar_subquery())
        async with self.database.transaction() as session:
            candidates = (await session.scalars(
                sa.select(Delivery.id).join(Subscription)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       free, Subscription.status == "active")
                .order_by(Delivery.next_attempt_at).limit(limit))).all()
            if not candidates:
                return []
            await session.execute(
                sa.update(Delivery)
                .where(Delivery.id.in_(candidates), Delivery.status == "pending", free)
                .values(lease=lease,
                        lease_until=now + timedelta(seconds=self.config.lease_seconds)))
            won = (await session.execute(sa.select(Delivery, Subscription, last)
                                         .join(Subscription)
                                         .where(Delivery.lease == lease))).all()
        return [Claimed(delivery, subscription, (number or 0) + 1)
                for delivery, subscription, number in won]

    async def _send_one(self, claimed: Claimed) -> None:
        try:
            await self.send(claimed)
        except Exception:  # its lease runs out and another send tries again
            log.exception("delivery failed", delivery_id=claimed.delivery.id)

    async def send(self, claimed: Claimed) -> None:
        """Send one leased delivery and record how it went."""
        delivery, subscription, number = claimed
        if self.throttle is not None:
            opens = await self.throttle.admit(subscription, utcnow())
            if opens is not None:  # over the channel's rate: not an attempt, it waits
                await self._delay(delivery, opens)
                return
        channel = self.notifications.channels[subscription.kind]
        started = time.perf_counter()
        refused = await self._unreadable(delivery, subscription.owner)
        if refused is not None:
            await self._settle(delivery, subscription.id, number, refused, 0.0)
            return
        try:
            config = self.notifications.config_of(subscription)
            message: Message[Any] = Message(
                id=webhook_id(delivery.notification_id, subscription.id),
                delivery_id=delivery.id, subscription_id=subscription.id,
                owner=subscription.owner, attempt=number, config=config,
                notification=delivery.payload, body=channel.render(delivery.payload),
                repeats=delivery.repeats)
            outcome = await channel.send(message)
        except CryptoError as exc:
            outcome = DeliveryOutcome(False, error=str(exc), retryable=False)
        except Exception as exc:
            log.exception("channel failed", kind=subscription.kind)
            outcome = DeliveryOutcome(False, error=f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        await self._settle(delivery, subscription.id, number, outcome, elapsed)

    async def _delay(self, delivery: Delivery, until: datetime) -> None:
        """Put a send off without counting an attempt, saying why in its last error."""
        why = self.throttle.why(until) if self.throttle is not None else None
        async with self.database.transaction() as session:
            await session.execute(
                sa.update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.lease == delivery.lease)
                .values(next_attempt_at=until, lease=None, lease_until=None, last_error=why))

    async def _unreadable(self, delivery: Delivery, owner: str) -> DeliveryOutcome | None:
        """A dead end for a delivery whose owner may no longer read its space: revoked
        since it was recorded (or while its subscription was paused)."""
        payload = delivery.payload
        space = (payload.get("event") or {}).get("space") or payload.get("space")
        if space is None or (await self.audience.view_of(owner)).may_read(space):
            return None
        return DeliveryOutcome(False, retryable=False,
                               error=f"{owner} is no longer a member of the space {space!r}")

    async def _settle(self, delivery: Delivery, subscription_id: str, number: int,
                      outcome: DeliveryOutcome, elapsed_ms: float) -> None:
        now = utcnow()
        error = outcome.error[:ERROR_CHARS] if outcome.error else None
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease": None, "lease_until": None,
                                  "last_error": error}
        if outcome.ok:
            values.update(status="delivered", delivered_at=now)
        elif not outcome.retryable or attempts >= self.config.max_attempts:
            values.update(status="dead")
        else:
            values.update(next_attempt_at=now + timedelta(seconds=backoff(
                self.config, attempts, outcome.retry_after)))
        async with self.database.transaction() as session:
            session.add(Attempt(delivery_id=delivery.id, number=number, at=now,
                                ok=outcome.ok, status_code=outcome.status_code,
                                error=error, duration_ms=elapsed_ms))
            # only while the lease is ours: a sender that took it over settles it itself
            await session.execute(sa.update(Delivery).where(Delivery.id == delivery.id,
                                                            Delivery.lease == delivery.lease)
                                  .values(**values))
            await session.execute(self._tally(subscription_id, outcome, error, now))
        if not outcome.ok:
            log.info("delivery attempt failed", delivery_id=delivery.id, attempt=number,
                     status_code=outcome.status_code, error=error)

    def _tally(self, subscription_id: str, outcome: DeliveryOutcome, error: str | None,
               now: datetime) -> sa.Update:
        """The subscription's failures in a row: reset by a success; paused when they
        reach the limit or the receiver says it is gone for good (410)."""
        update = sa.update(Subscription).where(Subscription.id == subscription_id)
        if outcome.ok:
            return update.where(Subscription.failures != 0).values(failures=0)
        failures = Subscription.failures + 1
        gone = outcome.status_code == 410
        limit = self.config.pause_after_failures
        reason = (f"the receiver answered 410 Gone: {error}" if gone else
                  f"{limit} failed attempts in a row; the last: {error}")
        pause = sa.true() if gone else failures >= limit
        return update.values(
            failures=failures, updated_at=now,
            status=sa.case((pause, "paused"), else_=Subscription.status),
            paused_reason=sa.case((pause, reason), else_=Subscription.paused_reason))
