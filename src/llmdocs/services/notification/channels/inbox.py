"""The in-app inbox: a delivery becomes an item in the subscriber's inbox (once, however
often it is sent), which `GET /inbox` lists and `GET /inbox/stream` pushes."""

from __future__ import annotations

from typing import Literal

from llmdocs.services.notification.channels import (
    Channel,
    ChannelConfig,
    DeliveryOutcome,
    Message,
)


class InboxConfig(ChannelConfig):
    kind: Literal["inbox"]


class InboxChannel(Channel[InboxConfig]):
    kind = "inbox"
    config_model = InboxConfig

    async def send(self, message: Message[InboxConfig]) -> DeliveryOutcome:
        await self.context.inbox.put(message.owner, message.delivery_id, message.notification,
                                     message.repeats)
        return DeliveryOutcome(True)
