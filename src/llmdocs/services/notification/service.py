"""Subscriptions and their deliveries, as their owners see and change them; knows
nothing of HTTP. Secrets are sealed with the row's id as context and never shown."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.auth import Principal
from llmdocs.core.crypto import KeyRing
from llmdocs.core.db import Database, utcnow
from llmdocs.core.idempotency import IdempotencyKeys, forget_expired
from llmdocs.core.ids import new_id
from llmdocs.core.spaces import SpaceView
from llmdocs.core.sqlite import in_thread
from llmdocs.services.notification.channels import (
    BadChannel,
    Channel,
    ChannelConfig,
    ChannelContext,
)
from llmdocs.services.notification.channels.kinds import KINDS
from llmdocs.services.notification.errors import (
    BadSubscription,
    NotReplayable,
    UnknownDelivery,
    UnknownSubscription,
)
from llmdocs.services.notification.models import (
    Attempt,
    Delivery,
    IdempotencyKey,
    InboxItem,
    Subscription,
)
from llmdocs.services.notification.schemas import (
    AttemptOut,
    DeliveryOut,
    Filters,
    SubscriptionIn,
    SubscriptionOut,
)

ADMIN = "notifications:admin"  # sees and changes every subscription


class Notifications:
    def __init__(self, database: Database, ring: KeyRing, context: ChannelContext) -> None:
        self.database = database
        self.ring = ring  # seals the channels' secrets, bound to their row's id
        self.context = context
        self.keys = IdempotencyKeys(database, IdempotencyKey)
        # one channel of each kind, shared by every subscription of that kind
        self.channels: dict[str, Channel] = {  # type: ignore[type-arg]
            kind: channel(context) for kind, channel in KINDS.items()}
        self.wake: Callable[[], None] = lambda: None  # the engine's: a delivery is due

    async def create(self, owner: str, body: SubscriptionIn, view: SpaceView
                     ) -> SubscriptionOut:
        """A subscription of `owner`'s (whose spaces are `view`); a channel that can never
        work, or a space filter naming a space the owner is no member of, is refused."""
        space = body.filters.space
        if space is not None and not view.may_read(space):
            message = f"No space {space!r} that you are a member of."
            raise BadSubscription(message, [{"field": "filters.space", "message": message}])
        config: ChannelConfig = body.channel
        try:
            await self.channels[config.kind].check(config)
        except BadChannel as exc:
            raise BadSubscription(str(exc), [{"field": "channel", "message": str(exc)}]
                                  ) from None
        now, sid = utcnow(), new_id()
        secrets = config.secrets()
        row = Subscription(
            id=sid, owner=owner, space=body.filters.space, events=list(body.events),
            filters=body.filters.model_dump(exclude_none=True), kind=config.kind,
            channel=config.public(),
            sealed=self.ring.seal_text(json.dumps(secrets), sid) if secrets else None,
            status="active", paused_reason=None, failures=0, created_at=now, updated_at=now)
        async with self.database.transaction() as session:
            session.add(row)
        return _subscription(row)

    async def subscriptions(self, caller: Principal, every: bool = False
                            ) -> list[SubscriptionOut]:
        """The caller's, newest first; everyone's for `every` with the admin scope."""
        query = sa.select(Subscription).order_by(Subscription.id.desc())
        if not (every and caller.acts_for_anyone(ADMIN)):
            query = query.where(Subscription.owner == caller.subject)
        async with self.database.transaction() as session:
            return [_subscription(row) for row in (await session.scalars(query)).all()]

    async def subscription(self, caller: Principal, sid: str) -> SubscriptionOut:
        async with self.database.transaction() as session:
            return _subscription(await _owned(session, caller, sid))

    async def remove(self, caller: Principal, sid: str) -> None:
        async with self.database.transaction() as session:
            await session.delete(await _owned(session, caller, sid))

    async def resume(self, caller: Principal, sid: str) -> SubscriptionOut:
        """Active again, its failure count from zero; its pending deliveries go out."""
        async with self.database.transaction() as session:
            row = await _owned(session, caller, sid)
            row.status, row.paused_reason, row.failures = "active", None, 0
            row.updated_at = utcnow()
        return _subscription(row)

    async def deliveries(self, caller: Principal, subscription_id: str | None = None,
                         status: str | None = None, limit: int = 50) -> list[DeliveryOut]:
        """The caller's subscriptions' deliveries, newest first, each with its attempts."""
        query = (sa.select(Delivery).join(Subscription)
                 .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit))
        if not caller.acts_for_anyone(ADMIN):
            query = query.where(Subscription.owner == caller.subject)
        if subscription_id is not None:
            query = query.where(Delivery.subscription_id == subscription_id)
        if status is not None:
            query = query.where(Delivery.status == status)
        async with self.database.transaction() as session:
            rows = (await session.scalars(query)).all()
            history = await _attempts(session, [row.id for row in rows])
        return [_delivery(row, history.get(row.id, [])) for row in rows]

    async def delivery(self, caller: Principal, delivery_id: str) -> DeliveryOut:
        async with self.database.transaction() as session:
            row = await self._delivery_of(session, caller, delivery_id)
            history = await _attempts(session, [row.id])
        return _delivery(row, history.get(row.id, []))

    async def replay(self, caller: Principal, delivery_id: str) -> DeliveryOut:
        """Send a dead (or delivered) one again, with a fresh round of attempts and the
        same `webhook-id`, so a receiver that has it already can tell."""
        async with self.database.transaction() as session:
            row = await self._delivery_of(session, caller, delivery_id)
            if row.status == "pending":
                raise NotReplayable(f"Delivery {delivery_id!r} is pending: it is being "
                                    "sent already.")
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
            row.lease = row.lease_until = None
            history = await _attempts(session, [row.id])
        self.wake()
        return _delivery(row, history.get(row.id, []))

    async def _delivery_of(self, session: AsyncSession, caller: Principal,
                           delivery_id: str) -> Delivery:
        row = await session.get(Delivery, delivery_id)
        if row is None:
            raise UnknownDelivery(f"No delivery {delivery_id!r}.")
        owner = await session.scalar(sa.select(Subscription.owner)
                                     .where(Subscription.id == row.subscription_id))
        if not caller.may_touch(owner, ADMIN):
            raise UnknownDelivery(f"No delivery {delivery_id!r}.")
        return row

    async def forget(self, before: datetime) -> dict[str, int]:
        """Retention: delivered deliveries and read inbox items from before `before`, and
        expired idempotency keys; how many of each went."""
        with in_thread():  # may delete many rows: on SQLite, off the event loop
            async with self.database.transaction() as session:
                gone = await session.execute(sa.delete(Delivery).where(
                    Delivery.status == "delivered", Delivery.delivered_at < before))
                read = await session.execute(sa.delete(InboxItem).where(
                    InboxItem.read_at.is_not(None), InboxItem.read_at < before))
                await forget_expired(session, IdempotencyKey, utcnow())
        return {"deliveries": _count(gone), "inbox_items": _count(read)}

    def config_of(self, row: Subscription) -> ChannelConfig:
        """The subscription's channel config with its secrets opened (CryptoError if
        the ring lost its key)."""
        secrets = json.loads(self.ring.open_text(row.sealed, row.id)) if row.sealed else {}
        model = KINDS[row.kind].config_model
        return model.model_validate({**row.channel, **secrets})


async def _owned(session: AsyncSession, caller: Principal, sid: str
                 ) -> Subscription:
    """The subscription if the caller may touch it; another's is as absent as none."""
    row = await session.get(Subscription, sid)
    if row is None or not caller.may_touch(row.owner, ADMIN):
        raise UnknownSubscription(f"No subscription {sid!r}.")
    return row


async def _attempts(session: AsyncSession, ids: Sequence[str]
                    ) -> dict[str, list[AttemptOut]]:
    if not ids:
        return {}
    rows = (await session.scalars(sa.select(Attempt).where(Attempt.delivery_id.in_(ids))
                                  .order_by(Attempt.delivery_id, Attempt.number))).all()
    found: dict[str, list[AttemptOut]] = {}
    for row in rows:
        found.setdefault(row.delivery_id, []).append(
            AttemptOut.model_validate(row, from_attributes=True))
    return found


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _subscription(row: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=row.id, owner=row.owner, events=row.events, filters=Filters(**row.filters),
        channel=row.channel, status=row.status,
        paused_reason=row.paused_reason, failures=row.failures, created_at=row.created_at,
        updated_at=row.updated_at)


def _delivery(row: Delivery, history: list[AttemptOut]) -> DeliveryOut:
    out = DeliveryOut.model_validate(row, from_attributes=True)
    return out.model_copy(update={"history": history})
