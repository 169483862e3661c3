"""Slack incoming webhooks: a message of blocks (a header, the text, the details, and a
button to the document, run or service in the web portal), with the title as the
`text` Slack shows in notifications. Slack answers `ok`; 429 asks to wait (Retry-After)
and 400/403/404/410 mean the hook cannot take this message or any more."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, field_validator

from llmdocs.services.notification.channels import (
    Channel,
    ChannelConfig,
    DeliveryOutcome,
    Message,
)
from llmdocs.services.notification.channels.webhook import check_url, post, webhook_url

FINAL_STATUSES = frozenset({400, 403, 404, 410})  # a bad payload, a revoked/removed hook
HEADER_CHARS = 150  # Slack's limits: a header's plain text…
SECTION_CHARS = 3000  # …and a section's text
SEVERITY_MARK = {"info": ":information_source:", "warning": ":warning:",
                 "error": ":red_circle:", "critical": ":rotating_light:"}


class SlackConfig(ChannelConfig):
    kind: Literal["slack"]
    # whoever has the hook's URL can post to the channel: it is stored as a secret
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        webhook_url(value.get_secret_value())
        return value


def escaped(text: str) -> str:
    """Text as Slack's mrkdwn reads it literally: &, < and > are its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def blocks(payload: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook body of a notification (as the engine stores it)."""
    title = str(payload.get("title") or payload.get("type") or "llmdocs")
    severity = str(payload.get("severity") or "info")
    details = [f"*{severity}*", f"`{payload.get('type')}`"] + [
        f"{name}: {escaped(str(payload[name]))}" for name in ("service", "document", "space")
        if payload.get(name)]
    message: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                     "text": _clip(title, HEADER_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(
            f"{SEVERITY_MARK.get(severity, '')} {escaped(str(payload.get('text') or ''))}",
            SECTION_CHARS)}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": _clip(" · ".join(details), SECTION_CHARS)}]},
    ]
    link = payload.get("link")
    if link:
        what = ("run" if "/runs/" in link else "document" if "/documents/" in link
                else "service" if "/services/" in link else "details")
        message.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": f"Open the {what}"},
            "url": link}]})
    return {"text": _clip(title, SECTION_CHARS), "blocks": message}


class SlackChannel(Channel[SlackConfig]):
    kind = "slack"
    config_model = SlackConfig

    async def check(self, config: SlackConfig) -> None:
        await check_url(self.context, config.url.get_secret_value())

    def render(self, payload: Any) -> dict[str, Any]:  # the stored payload (a dict)
        return blocks(payload)

    async def send(self, message: Message[SlackConfig]) -> DeliveryOutcome:
        return await post(self.context, message.config.url.get_secret_value(),
                          FINAL_STATUSES, json=message.body,
                          headers={"user-agent": "llmdocs-notification"})
