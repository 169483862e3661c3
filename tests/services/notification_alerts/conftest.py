"""Fixtures of the alert, Slack, email, grouping and rate-limit tests: the real
notification service over HTTP with short waits, a local server speaking Slack's
incoming-webhook protocol, and real SMTP servers (aiosmtpd), in clear or with STARTTLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmdocs.core.config import Settings
from llmdocs.core.events import Event
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from services.notification.conftest import Service

GUARD = 60.0  # a hang guard, not a performance bound
QUICK = {"BACKOFF_SECONDS": "0.05", "BACKOFF_MAX_SECONDS": "0.2", "POLL_SECONDS": "0.05",
         "TICK_SECONDS": "0.05", "LEASE_SECONDS": "2", "SEND_TIMEOUT_SECONDS": "1",
         "GROUP_WINDOW_SECONDS": "0"}


@dataclass
class Notify(Service):
    async def events(self, *events: Event) -> None:
        """Publish these events, as they are, at once."""
        await self.app.state.resources.events.publish_many(list(events))


Start = Callable[..., Awaitable[Notify]]


@pytest.fixture
def start(serve: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Start:
    """The service (on `on`, else the test's settings) with short waits and these
    LLMDOCS_NOTIFICATION_* settings."""

    async def started(on: Settings | None = None, **options: object) -> Notify:
        for name, value in {**QUICK, **{k.upper(): str(v) for k, v in options.items()}
                            }.items():
            monkeypatch.setenv(f"LLMDOCS_NOTIFICATION_{name}", value)
        app = create_app("notification", on or settings)
        return Notify(app, (await serve(app)).url, on or settings)

    return started


def event(type_: str, data: dict[str, Any], subject: str | None = None,
          at: dt.datetime | None = None) -> Event:
    return Event(source="llmdocs/test", type=type_, data=data, subject=subject,
                 **({"time": at} if at else {}))


async def until(check: Callable[[], Awaitable[Any]], guard: float = GUARD) -> Any:
    """`check`'s first truthy answer, polled."""
    async with asyncio.timeout(guard):
        while not (answer := await check()):
            await asyncio.sleep(0.05)
        return answer


async def subscribe(client: httpx.AsyncClient, events: list[str],
                    channel: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/subscriptions", json={"events": events, "channel": channel})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def deliveries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/deliveries", params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


# --- Slack ------------------------------------------------------------------------

BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


@dataclass
class SlackHook:
    """Answers as Slack's incoming webhooks do: `ok`, or a status and an error word."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to give first, in order

    @property
    def app(self) -> Starlette:
        async def post(request: Request) -> Response:
            body = await request.json()
            if not isinstance(body.get("text"), str) or not all(
                    isinstance(b, dict) and b.get("type") in BLOCK_TYPES
                    for b in body.get("blocks", [])):
                return PlainTextResponse("invalid_blocks", 400)
            if self.answers:
                status = self.answers.pop(0)
                if status == 429:
                    return PlainTextResponse("rate_limited", 429, {"Retry-After": "0"})
                if status != 200:
                    return PlainTextResponse("no_service", status)
            self.messages.append(body)
            return PlainTextResponse("ok")

        return Starlette(routes=[Route("/services/T0/B0/{token}", post, methods=["POST"])])


@pytest.fixture
async def slack(serve: Any) -> tuple[SlackHook, str]:
    hook = SlackHook()
    running = await serve(hook.app)
    return hook, f"{running.url}/services/T0/B0/xoxsecret"


# --- SMTP -------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What a real SMTP server received, and whether each came over TLS."""

    received: list[tuple[EmailMessage, list[str], bool]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = cast(bytes, envelope.original_content or envelope.content)
        mail = message_from_bytes(content, policy=policy.default)
        self.received.append((mail, list(envelope.rcpt_tos), session.ssl is not None))
        return "250 OK"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, the certificate its own authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmdocs test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


Smtp = Callable[..., tuple[Mailbox, dict[str, object]]]


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Smtp]:
    """Start an SMTP server (offering STARTTLS with `tls`); its mailbox, and the
    notification settings that send through it."""
    running: list[Controller] = []

    def started(tls: bool = False) -> tuple[Mailbox, dict[str, object]]:
        box, port = Mailbox(), free_port()
        options: dict[str, object] = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port}
        extra: dict[str, Any] = {}
        if tls:
            cert, key = self_signed(tmp_path)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            extra, options["SMTP_CA_FILE"] = {"tls_context": context}, cert
        controller = Controller(box, hostname="127.0.0.1", port=port, **extra)
        controller.start()
        running.append(controller)
        return box, options

    yield started
    for controller in running:
        controller.stop()

