"""`llmdocs logs ...`: the log-collector from the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.logcollector import spec
from llmdocs.services.logcollector.client import LogCollectorClient
from llmdocs.services.logcollector.schemas import LogOut

cli = service_cli(spec, LogCollectorClient, name="logs")
AS_JSON = typer.Option(False, "--json", help="Print JSON.")


def _line(record: LogOut) -> str:
    return (f"{record.time.isoformat()} {record.level.upper():8} {record.service:16} "
            f"{record.message} [{record.correlation_id or '-'}]")


@cli.command()
def tail(
    service: str = typer.Option(None, help="Only this service."),
    level: list[str] = typer.Option(None, help="Only these levels (repeatable)."),
    limit: int = typer.Option(0, help="Stop after this many records (0: follow forever)."),
) -> None:
    """Follow log records as they arrive."""

    async def follow(c: LogCollectorClient) -> None:
        seen = 0
        async for record in c.tail(service=service, level=level or []):
            console.print(_line(record), markup=False, highlight=False)
            seen += 1
            if limit and seen >= limit:
                return

    call(LogCollectorClient, follow)


@cli.command()
def search(
    text: str = typer.Argument(None, help="Text to find in messages."),
    service: str = typer.Option(None),
    level: list[str] = typer.Option(None),
    since: str = typer.Option(None, help="RFC 3339 time."),
    events: bool = typer.Option(False, "--events", help="Search events instead of logs."),
    limit: int = typer.Option(50),
    as_json: bool = AS_JSON,
) -> None:
    """Search stored log records (or events)."""

    async def find(c: LogCollectorClient) -> list[dict[str, Any]]:
        if events:
            page = await c.events(q=text, service=service, since=since, limit=limit)
        else:
            page = await c.logs(q=text, service=service, level=level or [], since=since,
                                limit=limit)
        return [item.model_dump(mode="json") for item in page.items]

    items = call(LogCollectorClient, find)
    if as_json:
        print_json(items)
        return
    table = Table(title="events" if events else "logs")
    for column in ("time", "service", "level/type", "message/subject", "correlation"):
        table.add_column(column)
    for i in items:
        table.add_row(i["time"], i["service"], i.get("level") or i.get("type", ""),
                      i.get("message") or i.get("subject") or "", i["correlation_id"] or "")
    console.print(table)


@cli.command()
def trace(correlation_id: str, as_json: bool = AS_JSON) -> None:
    """Everything that happened for one request, across services, in time order."""

    found = call(LogCollectorClient, lambda c: c.correlation(correlation_id)
                 ).model_dump(mode="json")
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{correlation_id}: {found['count']} records from "
                        f"{', '.join(found['services'])}")
    for column in ("time", "kind", "service", "what"):
        table.add_column(column)
    for entry in found["timeline"]:
        table.add_row(entry["time"], entry["kind"], entry["service"], entry["summary"])
    console.print(table)
