"""Every channel kind: its config model (in the subscription schema's union) and its
class. A new kind (slack, email) adds its module's two names here."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from llmdocs.services.notification.channels import Channel
from llmdocs.services.notification.channels.email import EmailChannel, EmailConfig
from llmdocs.services.notification.channels.inbox import InboxChannel, InboxConfig
from llmdocs.services.notification.channels.slack import SlackChannel, SlackConfig
from llmdocs.services.notification.channels.webhook import WebhookChannel, WebhookConfig

ChannelIn = Annotated[WebhookConfig | InboxConfig | SlackConfig | EmailConfig,
                      Field(discriminator="kind")]

KINDS: dict[str, type[Channel]] = {  # type: ignore[type-arg]
    channel.kind: channel
    for channel in (WebhookChannel, InboxChannel, SlackChannel, EmailChannel)}
