"""Email over SMTP (aiosmtplib), through the one server the settings name: STARTTLS
whenever the server offers it (or TLS from the first byte), a plain-text body and an
HTML one, and a Message-ID made from the delivery's id, the same on every retry, so a
mail client shows a retried message once."""

from __future__ import annotations

import html
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Annotated, Any, Literal

import aiosmtplib
from pydantic import Field

from llmdocs.services.notification.alertsettings import AlertSettings
from llmdocs.services.notification.channels import (
    BadChannel,
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryOutcome,
    Message,
)

ADDRESS = r"^[^@\s<>(),;:\"\[\]]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
ERROR_CHARS = 300


class EmailConfig(ChannelConfig):
    kind: Literal["email"]
    to: list[Annotated[str, Field(max_length=320, pattern=ADDRESS)]] = Field(
        min_length=1, max_length=10)


def _tls_context(config: AlertSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.smtp_ca_file:
        context.load_verify_locations(cafile=config.smtp_ca_file)
    return context


def email_of(payload: dict[str, Any], message_id: str, sender: str,
             to: list[str]) -> EmailMessage:
    """The notification as a message with a plain-text and an HTML alternative."""
    title = str(payload.get("title") or payload.get("type") or "llmdocs")
    severity = str(payload.get("severity") or "info")
    text = str(payload.get("text") or "")
    link = payload.get("link")
    facts = [(name, str(payload[name])) for name in ("type", "service", "document", "space")
             if payload.get(name)]
    mail = EmailMessage()
    mail["Subject"] = re.sub(r"[\r\n]+", " ", f"[llmdocs {severity}] {title}")[:200]
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message_id}@llmdocs>"
    plain = [title, "", text, ""] + [f"{name}: {value}" for name, value in facts]
    mail.set_content("\n".join(plain + (["", f"Open: {link}"] if link else [])) + "\n")
    rows = "".join(f"<tr><th align=\"left\">{html.escape(name)}</th>"
                   f"<td>{html.escape(value)}</td></tr>" for name, value in facts)
    button = (f'<p><a href="{html.escape(str(link), quote=True)}">Open it</a></p>'
              if link else "")
    mail.add_alternative(
        f"<html><body><h2>{html.escape(title)}</h2><p><b>{html.escape(severity)}</b></p>"
        f"<p>{html.escape(text)}</p><table>{rows}</table>{button}</body></html>",
        subtype="html")
    return mail


class EmailChannel(Channel[EmailConfig]):
    kind = "email"
    config_model = EmailConfig

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.smtp = AlertSettings()

    async def check(self, config: EmailConfig) -> None:
        allowed = {domain.lower() for domain in self.smtp.email_domains}
        outside = [to for to in config.to if allowed
                   and to.rpartition("@")[2].lower() not in allowed]
        if outside:
            raise BadChannel(f"email may go only to {', '.join(sorted(allowed))}: "
                             f"not to {', '.join(outside)}")

    async def send(self, message: Message[EmailConfig]) -> DeliveryOutcome:
        smtp = self.smtp
        mail = email_of(message.notification, message.id, smtp.smtp_from, message.config.to)
        try:
            await aiosmtplib.send(
                mail, hostname=smtp.smtp_host, port=smtp.smtp_port,
                username=smtp.smtp_username or None,
                password=smtp.smtp_password.get_secret_value() or None,
                use_tls=smtp.smtp_tls,
                # None: STARTTLS when the server offers it; True: refuse plain text
                start_tls=None if smtp.smtp_tls or not smtp.smtp_require_tls else True,
                tls_context=_tls_context(smtp),
                timeout=self.context.config.send_timeout_seconds)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            return DeliveryOutcome(False, max(codes, default=None),
                                   f"recipients refused: {exc}"[:ERROR_CHARS],
                                   retryable=all(400 <= c < 500 for c in codes))
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx: try later (greylisting, a full queue); 5xx: this message never goes
            return DeliveryOutcome(False, exc.code, f"SMTP {exc.code}: {exc.message}"[
                :ERROR_CHARS], retryable=not 500 <= exc.code < 600)
        except (aiosmtplib.SMTPException, OSError) as exc:  # unreachable, TLS, timeout
            return DeliveryOutcome(False, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
        return DeliveryOutcome(True, 250)
