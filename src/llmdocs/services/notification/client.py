"""Typed client of the notification service: what the CLI and other services use."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from llmdocs.core.client import ServiceClient
from llmdocs.services.notification.schemas import DeliveryOut, InboxItemOut, SubscriptionOut

_subscriptions = TypeAdapter(list[SubscriptionOut])
_deliveries = TypeAdapter(list[DeliveryOut])
_items = TypeAdapter(list[InboxItemOut])


class NotificationClient(ServiceClient):
    service = "notification"

    async def subscribe(self, events: list[str], channel: dict[str, Any],
                        filters: dict[str, Any] | None = None) -> SubscriptionOut:
        body = {"events": events, "channel": channel, "filters": filters or {}}
        return SubscriptionOut.model_validate(await self.create_json("/subscriptions", body))

    async def subscriptions(self, every: bool = False) -> list[SubscriptionOut]:
        return _subscriptions.validate_python(await self.get_json(
            "/subscriptions", params={"all": str(every).lower()}))

    async def remove(self, subscription_id: str) -> None:
        await self.request("DELETE", f"/subscriptions/{subscription_id}", idempotent=True)

    async def resume(self, subscription_id: str) -> SubscriptionOut:
        return SubscriptionOut.model_validate(await self.post_json(
            f"/subscriptions/{subscription_id}/resume", {}, idempotent=True))

    async def deliveries(self, subscription_id: str | None = None, status: str | None = None,
                         limit: int = 50) -> list[DeliveryOut]:
        params = {k: v for k, v in {"subscription_id": subscription_id, "status": status,
                                    "limit": limit}.items() if v is not None}
        return _deliveries.validate_python(await self.get_json("/deliveries", params=params))

    async def replay(self, delivery_id: str) -> DeliveryOut:
        return DeliveryOut.model_validate(await self.post_json(
            f"/deliveries/{delivery_id}/replay", {}))

    async def inbox(self, unread: bool = False, limit: int = 50) -> list[InboxItemOut]:
        return _items.validate_python(await self.get_json(
            "/inbox", params={"unread": str(unread).lower(), "limit": limit}))
