"""HTTP routes of the notification service. Routes parse, call service.py and shape the
answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from llmdocs.core.auth import Principal, require
from llmdocs.core.errors import domain_problems
from llmdocs.core.idempotency import KeyedRequest, made
from llmdocs.core.spaces import Spaces
from llmdocs.services.notification.errors import (
    BadSubscription,
    NotReplayable,
    UnknownDelivery,
    UnknownSubscription,
)
from llmdocs.services.notification.inbox import Inbox
from llmdocs.services.notification.schemas import (
    DeliveryOut,
    InboxItemOut,
    MarkedRead,
    MarkRead,
    SubscriptionIn,
    SubscriptionOut,
)
from llmdocs.services.notification.service import Notifications

router = APIRouter(tags=["notification"], dependencies=[Depends(domain_problems({
    BadSubscription: 422, UnknownSubscription: 404, UnknownDelivery: 404,
    NotReplayable: 409}))])
Reader = Annotated[Principal, Depends(require("notifications:read"))]
Writer = Annotated[Principal, Depends(require("notifications:write"))]
Id = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
SSE_PING_SECONDS = 15  # a comment line keeps proxies from closing a quiet stream


async def service(request: Request) -> Notifications:
    notifications: Notifications = request.app.state.notifications
    return notifications


async def inbox_of(request: Request) -> Inbox:
    inbox: Inbox = request.app.state.inbox
    return inbox


Service = Annotated[Notifications, Depends(service)]
Inboxes = Annotated[Inbox, Depends(inbox_of)]


@router.post("/subscriptions", response_model=SubscriptionOut, status_code=201,
             summary="Subscribe a channel to event types or alerts, with filters")
async def subscribe(body: SubscriptionIn, caller: Writer, svc: Service,
                    keyed: KeyedRequest, spaces: Spaces) -> Response:
    return await keyed.once(svc.keys, caller.subject, body,
                            lambda: made(svc.create(caller.subject, body, spaces)))


@router.get("/subscriptions", response_model=list[SubscriptionOut],
            summary="The caller's subscriptions (everyone's with all=true and admin)")
async def subscriptions(caller: Reader, svc: Service, all: bool = False
                        ) -> list[SubscriptionOut]:
    return await svc.subscriptions(caller, all)


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
            summary="One subscription")
async def subscription(subscription_id: Id, caller: Reader, svc: Service) -> SubscriptionOut:
    return await svc.subscription(caller, subscription_id)


@router.delete("/subscriptions/{subscription_id}", status_code=204,
               summary="Remove a subscription and its deliveries")
async def remove(subscription_id: Id, caller: Writer, svc: Service) -> Response:
    await svc.remove(caller, subscription_id)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionOut,
             summary="Resume a paused subscription; its waiting deliveries go out")
async def resume(subscription_id: Id, caller: Writer, svc: Service) -> SubscriptionOut:
    return await svc.resume(caller, subscription_id)


@router.get("/deliveries", response_model=list[DeliveryOut],
            summary="Deliveries of the caller's subscriptions, newest first, with attempts")
async def deliveries(
    caller: Reader, svc: Service,
    subscription_id: str | None = Query(None, max_length=36, pattern=r"^[A-Za-z0-9-]+$"),
    status: Literal["pending", "delivered", "dead", "grouped"] | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[DeliveryOut]:
    return await svc.deliveries(caller, subscription_id, status, limit)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut, summary="One delivery")
async def delivery(delivery_id: Id, caller: Reader, svc: Service) -> DeliveryOut:
    return await svc.delivery(caller, delivery_id)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryOut,
             summary="Send a dead (or delivered) delivery again, with the same id")
async def replay(delivery_id: Id, caller: Writer, svc: Service) -> DeliveryOut:
    return await svc.replay(caller, delivery_id)


@router.get("/inbox", response_model=list[InboxItemOut],
            summary="The caller's in-app notifications, newest first")
async def inbox(caller: Reader, inboxes: Inboxes, unread: bool = False,
                limit: int = Query(50, ge=1, le=500)) -> list[InboxItemOut]:
    return await inboxes.items(caller.subject, unread=unread, limit=limit)


@router.post("/inbox/read", response_model=MarkedRead,
             summary="Mark inbox items read (every unread one when no ids are given)")
async def mark_read(body: MarkRead, caller: Reader, inboxes: Inboxes) -> MarkedRead:
    marked = await inboxes.mark_read(caller.subject, body.ids)
    return MarkedRead(marked=marked, unread=await inboxes.unread(caller.subject))


@router.get("/inbox/stream", summary="The caller's new inbox items as server-sent events",
            response_class=EventSourceResponse)
async def stream(request: Request, caller: Reader, inboxes: Inboxes) -> EventSourceResponse:
    """Unread items newer than `Last-Event-ID` (a reconnecting browser sends it), then
    new ones as they come."""
    after = request.headers.get("last-event-id") or None

    async def items() -> AsyncIterator[ServerSentEvent]:
        async for item in inboxes.follow(caller.subject, after):
            yield ServerSentEvent(data=item.model_dump_json(), id=item.id, event="inbox")

    return EventSourceResponse(items(), ping=SSE_PING_SECONDS)
