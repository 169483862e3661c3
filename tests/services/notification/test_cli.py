"""`llmdocs notify`: subscribe a webhook, list subscriptions, see deliveries with their
attempts, replay one, remove the subscription; an inbox by default."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from llmdocs.cli import app
from services.notification.conftest import Service, until
from services.notification.receiver import Receiver


async def notify(*args: str) -> Any:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["notify", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else result.output


async def test_the_cli_manages_subscriptions_and_deliveries(
        service: Service, receiver: tuple[Receiver, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    hook, url = receiver
    monkeypatch.setenv("LLMDOCS_NOTIFICATION_PORT", str(urlsplit(service.url).port))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", service.settings.signing_key)
    made = await notify("subscribe", "llmdocs.document.*", "--webhook", url,
                        "--secret", hook.secret, "--filters", '{"document": "doc-1"}',
                        "--json")
    assert made["channel"] == {"kind": "webhook", "url": url}
    assert made["filters"]["document"] == "doc-1"
    inbox = await notify("subscribe", "alert.*")
    assert "→ inbox" in inbox
    listed = await notify("list", "--json")
    assert {s["channel"]["kind"] for s in listed} == {"webhook", "inbox"}
    assert hook.secret not in await notify("list")

    await service.publish()

    async def delivered() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = await notify("deliveries", "--status", "delivered",
                                                   "--json")
        return found or None

    sent = (await until(delivered))[0]
    assert sent["history"][0]["status_code"] == 204
    table = await notify("deliveries")
    assert "delivered" in table and "204" in table
    assert "pending again" in await notify("replay", sent["id"])
    await until(lambda: _sent_twice(hook))
    assert len({r.id for r in hook.accepted}) == 1  # the same message, sent on purpose
    await notify("remove", made["id"])
    assert [s["id"] for s in await notify("list", "--json")] != [made["id"]]
    assert len(await notify("list", "--json")) == 1


async def _sent_twice(hook: Receiver) -> bool:
    return len(hook.accepted) >= 2
