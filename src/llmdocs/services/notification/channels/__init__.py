"""The channel interface: the delivery engine hands each due delivery, as a `Message`,
to the channel of its subscription's kind and records the `DeliveryOutcome`. A kind is
a config model (what a subscription's `channel` holds; `SecretStr` fields are stored
encrypted and never returned) and a `Channel` class, registered in `KINDS`."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.services.notification.rules import Notification
from llmdocs.services.notification.settings import NotificationSettings

if TYPE_CHECKING:  # the inbox's module needs the schemas, which need the channel kinds
    from llmdocs.services.notification.inbox import Inbox


class ChannelConfig(BaseModel):
    """A kind's settings as a subscription gives them; subclasses add `kind: Literal[...]`."""

    model_config = ConfigDict(extra="forbid")

    kind: str

    def public(self) -> dict[str, Any]:
        """What is stored in clear and shown: everything but the secrets."""
        return self.model_dump(mode="json", exclude=set(self.secret_fields()))

    def secrets(self) -> dict[str, str]:
        return {name: getattr(self, name).get_secret_value() for name in self.secret_fields()
                if getattr(self, name) is not None}

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [name for name, f in cls.model_fields.items()
                if f.annotation in (SecretStr, SecretStr | None)]


Config = TypeVar("Config", bound=ChannelConfig)


@dataclass(frozen=True)
class Message(Generic[Config]):
    """One delivery's send: `id` is the same on every attempt (a webhook's
    `webhook-id`); `body` is the JSON payload, already capped."""

    id: str
    delivery_id: str
    subscription_id: str
    owner: str  # the subscriber: an inbox's user
    attempt: int  # 1 on the first send, counting every round
    config: Config  # the subscription's channel, secrets decrypted
    notification: dict[str, Any]  # the Notification as stored (payload)
    body: dict[str, Any]
    repeats: int = 1  # how many alerts grouping folded into it


@dataclass(frozen=True)
class DeliveryOutcome:
    ok: bool
    status_code: int | None = None  # the remote's answer, if it gave one
    error: str | None = None  # why it failed, short
    retryable: bool = True  # False: a retry cannot help (e.g. 410 Gone): dead at once
    retry_after: float | None = None  # the remote asked to wait this long


@dataclass(frozen=True)
class ChannelContext:
    """What channels share: settings, the guarded HTTP client (every user-supplied
    address goes through it), the database, the users' inboxes."""

    settings: Settings
    config: NotificationSettings
    http: httpx.AsyncClient
    database: Database
    inbox: Inbox


class BadChannel(Exception):
    """A channel config that cannot work: raised by `Channel.check`."""


class Channel(abc.ABC, Generic[Config]):
    kind: ClassVar[str]
    config_model: ClassVar[type[ChannelConfig]]

    def __init__(self, context: ChannelContext) -> None:
        self.context = context

    async def check(self, config: Config) -> None:
        """Refuse (BadChannel) a config that can never be delivered to, at subscribe time
        (a URL into a blocked network); nothing by default."""

    @abc.abstractmethod
    async def send(self, message: Message[Config]) -> DeliveryOutcome:
        """Deliver once; never raise for the remote's failure: answer it as an outcome."""

    def render(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON body for this kind from a stored notification (`envelope`'s shape,
        capped); the default sends it as it is."""
        return payload


def envelope(n: Notification) -> dict[str, Any]:
    """The common JSON shape of a notification (a webhook's body)."""
    return {"id": n.id, "type": n.kind, "title": n.title, "text": n.text,
            "severity": n.severity, "link": n.link, "service": n.service,
            "document": n.document, "tags": list(n.tags), "space": n.space,
            "data": n.data, "event": n.event.model_dump(mode="json")}
