"""Slack and email channels against real servers: a local server speaking Slack's
incoming-webhook protocol (blocks in, `ok` out) and aiosmtpd, with STARTTLS or without."""

from __future__ import annotations

from typing import Any

import httpx

from services.notification_alerts.conftest import (
    SlackHook,
    Smtp,
    Start,
    deliveries,
    event,
    subscribe,
    until,
)

FAILED = "llmdocs.workflow.failed"


def _failed(run: str) -> Any:
    return event(FAILED, {"workflow": "docgen", "run_id": run, "error": "a <bad> & odd"},
                 run)


async def _delivered(alice: httpx.AsyncClient, count: int = 1
                     ) -> list[dict[str, Any]] | None:
    found = await deliveries(alice, status="delivered")
    return found if len(found) >= count else None


async def test_slack_gets_blocks_with_a_button_to_the_run(
        start: Start, slack: tuple[SlackHook, str]) -> None:
    hook, url = slack
    notify = await start()
    async with notify.client() as alice:
        made = await subscribe(alice, ["alert.run_failed"], {"kind": "slack", "url": url})
        assert made["channel"] == {"kind": "slack"}  # the hook's URL is a secret
        await notify.events(_failed("r1"))
        [delivery] = await until(lambda: _delivered(alice))
    assert [a["status_code"] for a in delivery["history"]] == [200]
    [message] = hook.messages
    assert message["text"] == "A run of docgen failed"
    header, section, context, actions = message["blocks"]
    assert header["text"] == {"type": "plain_text", "emoji": True,
                              "text": "A run of docgen failed"}
    assert section["text"]["type"] == "mrkdwn"
    assert "Run r1: a &lt;bad&gt; &amp; odd" in section["text"]["text"]
    assert "*error*" in context["elements"][0]["text"]
    [button] = actions["elements"]
    assert button["url"] == "http://localhost:3000/runs/r1"
    assert button["text"]["text"] == "Open the run"


async def test_slack_asking_to_wait_is_retried_and_a_gone_hook_is_not(
        start: Start, slack: tuple[SlackHook, str]) -> None:
    hook, url = slack
    hook.answers = [429, 200, 404]
    notify = await start()
    async with notify.client() as alice:
        await subscribe(alice, ["alert.run_failed"], {"kind": "slack", "url": url})
        await notify.events(_failed("r1"))
        [delivered] = await until(lambda: _delivered(alice))
        assert [a["status_code"] for a in delivered["history"]] == [429, 200]
        await notify.events(_failed("r2"))  # Slack: no_service, the hook was removed
        [dead] = await until(lambda: deliveries(alice, status="dead"))
    assert [(a["status_code"], a["error"]) for a in dead["history"]] == [
        (404, "HTTP 404: no_service")]
    assert len(hook.messages) == 1


async def test_a_slack_url_that_is_not_a_plain_web_address_is_refused(start: Start) -> None:
    notify = await start()
    async with notify.client() as alice:
        for url in ("ftp://hooks.example/x", "https://user:pw@hooks.example/x", "hooks"):
            answer = await alice.post("/subscriptions", json={
                "events": ["alert.*"], "channel": {"kind": "slack", "url": url}})
            assert answer.status_code == 422, (url, answer.text)


async def test_email_goes_over_starttls_as_text_and_html(start: Start, smtp: Smtp) -> None:
    box, options = smtp(tls=True)
    notify = await start(**options, SMTP_REQUIRE_TLS="true")
    async with notify.client() as alice:
        await subscribe(alice, ["alert.run_failed"],
                        {"kind": "email", "to": ["ops@example.com", "ann@example.org"]})
        await notify.events(_failed("r1"))
        [delivery] = await until(lambda: _delivered(alice))
    assert [a["status_code"] for a in delivery["history"]] == [250]
    [(mail, recipients, over_tls)] = box.received
    assert over_tls
    assert recipients == ["ops@example.com", "ann@example.org"]
    assert mail["Subject"] == "[llmdocs error] A run of docgen failed"
    assert mail["Message-ID"].startswith("<msg_") and mail["Message-ID"].endswith("@llmdocs>")
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    assert "Run r1: a <bad> & odd" in plain.get_content()
    assert "Open: http://localhost:3000/runs/r1" in plain.get_content()
    assert "Run r1: a &lt;bad&gt; &amp; odd" in html.get_content()
    assert 'href="http://localhost:3000/runs/r1"' in html.get_content()


async def test_email_goes_in_clear_to_a_server_without_tls(start: Start, smtp: Smtp) -> None:
    box, options = smtp(tls=False)
    notify = await start(**options)
    async with notify.client() as alice:
        await subscribe(alice, ["alert.*"], {"kind": "email", "to": ["ops@example.com"]})
        await notify.events(_failed("r1"))
        await until(lambda: _delivered(alice))
    [(mail, _, over_tls)] = box.received
    assert not over_tls and mail["To"] == "ops@example.com"


async def test_an_address_that_is_not_one_or_not_allowed_is_refused(start: Start) -> None:
    notify = await start(EMAIL_DOMAINS='["example.com"]')
    async with notify.client() as alice:
        await subscribe(alice, ["alert.*"], {"kind": "email", "to": ["ops@Example.COM"]})
        for to in ([], ["not an address"], ["a@b.c\r\nBcc: x@y.z"],
                   ["ops@example.com", "someone@elsewhere.org"]):
            answer = await alice.post("/subscriptions", json={
                "events": ["alert.*"], "channel": {"kind": "email", "to": to}})
            assert answer.status_code == 422, (to, answer.text)
