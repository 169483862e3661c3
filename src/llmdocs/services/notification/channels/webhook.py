"""Webhooks signed as the Standard Webhooks specification says: `webhook-id` (stable
across retries), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` keyed with the base64-decoded secret after `whsec_`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field, SecretStr, field_validator

from llmdocs.core.fetch import BlockedAddress, check_host
from llmdocs.services.notification.channels import (
    BadChannel,
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryOutcome,
    Message,
)

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105: a prefix, not a secret
# answers a retry cannot change (the specification: 410 Gone means stop sending); any
# other failure is retried, since a receiver being redeployed answers 404 or 502 a while
FINAL_STATUSES = frozenset({410, 413})
ERROR_CHARS = 300  # of a failed answer's body, kept with the attempt


def webhook_url(value: str) -> str:
    if not value.isprintable() or " " in value:
        raise ValueError("must be a URL without spaces or control characters")
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if url.username is not None or url.password is not None:
        raise ValueError("must not carry credentials: put them in the secret")
    _ = url.port  # a bad port raises ValueError: a 422
    return value


WebhookUrl = Annotated[str, Field(max_length=2000), AfterValidator(webhook_url)]


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body,
                      hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


class WebhookConfig(ChannelConfig):
    kind: Literal["webhook"]
    url: WebhookUrl
    secret: SecretStr = Field(description="whsec_ and 24 to 64 random bytes in base64")

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith(SECRET_PREFIX):
            raise ValueError(f"must start with {SECRET_PREFIX}")
        try:
            key = secret_key(raw)
        except (binascii.Error, ValueError):
            raise ValueError(f"must be {SECRET_PREFIX} and base64") from None
        if not 24 <= len(key) <= 64:
            raise ValueError("must hold 24 to 64 bytes")
        return value


class WebhookChannel(Channel[WebhookConfig]):
    kind = "webhook"
    config_model = WebhookConfig

    async def check(self, config: WebhookConfig) -> None:
        await check_url(self.context, config.url)

    async def send(self, message: Message[WebhookConfig]) -> DeliveryOutcome:
        body = json.dumps(message.body, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "llmdocs-notification",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(message.config.secret.get_secret_value(), message.id,
                                      timestamp, body),
        }
        return await post(self.context, message.config.url, FINAL_STATUSES,
                          content=body, headers=headers)


async def check_url(context: ChannelContext, address: str) -> None:
    """Refuse (BadChannel) an address in a blocked network; one that does not resolve
    now may later, and its deliveries will say why they fail."""
    url = urlsplit(address)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        await check_host(url.hostname or "", port, context.settings.blocked_networks)
    except BlockedAddress as exc:
        raise BadChannel(str(exc)) from None
    except httpx.ConnectError:
        pass  # not resolvable now: its deliveries will say so, it may be later


async def post(context: ChannelContext, url: str, final: frozenset[int],
               **request: Any) -> DeliveryOutcome:
    """POST through the guarded client; the answer as an outcome (`final`: statuses a
    retry cannot change). A failed answer's body is read only as far as it is kept."""
    try:
        async with context.http.stream(
                "POST", url, timeout=context.config.send_timeout_seconds,
                **request) as answer:
            if answer.is_success:
                return DeliveryOutcome(True, answer.status_code)
            said = await _start_of(answer)
    except BlockedAddress as exc:  # its name moved into a blocked network
        return DeliveryOutcome(False, error=str(exc), retryable=False)
    except httpx.HTTPError as exc:
        return DeliveryOutcome(False, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    return DeliveryOutcome(
        False, answer.status_code, f"HTTP {answer.status_code}: {said}",
        retryable=answer.status_code not in final,
        retry_after=_retry_after(answer.headers.get("retry-after")))


async def _start_of(answer: httpx.Response) -> str:
    """The first characters of a failed answer's body: a receiver's page of any size is
    never read whole (nor is a successful answer's body read at all)."""
    read = b""
    async for chunk in answer.aiter_bytes():
        read += chunk
        if len(read) >= ERROR_CHARS:
            break
    return read[:ERROR_CHARS].decode(errors="replace")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides
