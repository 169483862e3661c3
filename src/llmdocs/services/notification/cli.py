"""`llmdocs notify ...`: subscribe channels to events, see and replay deliveries."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.notification import spec
from llmdocs.services.notification.client import NotificationClient

cli = service_cli(spec, NotificationClient, name="notify")


@cli.command()
def subscribe(
    events: list[str] = typer.Argument(..., help="Event types, alert kinds or patterns "
                                                 "(llmdocs.document.*)."),
    webhook: str = typer.Option(None, help="Deliver to this URL (needs --secret)."),
    secret: str = typer.Option(None, envvar="LLMDOCS_WEBHOOK_SECRET",
                               help="The webhook's whsec_<base64> signing secret."),
    channel: str = typer.Option(None, help="Any channel as JSON: {\"kind\": ...}."),
    filters: str = typer.Option(None, help="Filters as JSON: service, document, tag, "
                                           "severity, space."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Subscribe a channel (your in-app inbox unless --webhook or --channel) to events."""
    target: dict[str, Any] = (json.loads(channel) if channel else
                              {"kind": "webhook", "url": webhook, "secret": secret}
                              if webhook else {"kind": "inbox"})
    made = call(NotificationClient, lambda n: n.subscribe(
        events, target, json.loads(filters) if filters else None))
    if as_json:
        print_json(made.model_dump(mode="json"))
        return
    console.print(f"subscribed {made.id}: {', '.join(made.events)} → {made.channel['kind']}")


@cli.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Everyone's (admin)."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Your subscriptions, newest first."""
    found = call(NotificationClient, lambda n: n.subscriptions(all_))
    if as_json:
        print_json([s.model_dump(mode="json") for s in found])
        return
    table = Table(title="subscriptions")
    for column in ("id", "events", "channel", "filters", "status", "failures"):
        table.add_column(column)
    for s in found:
        status = s.status + (f": {s.paused_reason}" if s.paused_reason else "")
        table.add_row(s.id, ", ".join(s.events),
                      f"{s.channel['kind']} {s.channel.get('url', '')}".strip(),
                      json.dumps(s.filters.model_dump(exclude_none=True)), status,
                      str(s.failures))
    console.print(table)


@cli.command()
def remove(subscription_id: str) -> None:
    """Remove a subscription and its deliveries."""
    call(NotificationClient, lambda n: n.remove(subscription_id))
    console.print(f"removed {subscription_id}")


@cli.command()
def resume(subscription_id: str) -> None:
    """Resume a paused subscription."""
    call(NotificationClient, lambda n: n.resume(subscription_id))
    console.print(f"resumed {subscription_id}")


@cli.command()
def deliveries(
    subscription_id: str = typer.Option(None, "--subscription", help="Only its."),
    status: str = typer.Option(None, help="pending, delivered or dead."),
    limit: int = typer.Option(50, min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Deliveries, newest first, with their attempts."""
    found = call(NotificationClient, lambda n: n.deliveries(subscription_id, status, limit))
    if as_json:
        print_json([d.model_dump(mode="json") for d in found])
        return
    table = Table(title="deliveries")
    for column in ("created", "id", "kind", "status", "attempts", "last answer"):
        table.add_column(column)
    for d in found:
        last = d.history[-1] if d.history else None
        answer = "" if last is None else (str(last.status_code or "") + " " +
                                          (last.error or "")).strip()
        table.add_row(d.created_at.strftime("%Y-%m-%d %H:%M:%S"), d.id, d.kind, d.status,
                      str(len(d.history)), answer)
    console.print(table)


@cli.command()
def replay(delivery_id: str) -> None:
    """Send a dead (or delivered) delivery again."""
    again = call(NotificationClient, lambda n: n.replay(delivery_id))
    console.print(f"{again.id} is {again.status} again")
