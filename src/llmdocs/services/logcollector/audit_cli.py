"""`llmdocs audit ...`: verify the audit trail's chains, list and export records."""

from __future__ import annotations

import asyncio
import sys

import typer
from rich.table import Table
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from llmdocs.cli_support import call, cli_settings, console, err_console, print_json
from llmdocs.core.db import Database
from llmdocs.services.logcollector.audit import AuditStore
from llmdocs.services.logcollector.client import LogCollectorClient
from llmdocs.services.logcollector.schemas import Verification

cli = typer.Typer(name="audit", no_args_is_help=True,
                  help="The audit trail: who read or changed what, when, hash-chained.")
FILTERS = ("actor", "resource_type", "resource_id", "action", "service", "outcome", "since",
           "until")


async def _verify(url: str) -> Verification:
    database = Database(url)
    try:
        return await AuditStore(database).verify()
    finally:
        await database.dispose()


@cli.command()
def verify(
    database_url: str = typer.Option(
        None, envvar="LLMDOCS_AUDIT_DATABASE_URL",
        help="The log-collector's database (default: LLMDOCS_DATABASE_URL's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Walk every chain in the database itself; exit 1 naming the first record changed,
    removed or inserted, 0 when all are intact."""
    # straight from the database, not through the API: it must work with the service
    # down, and a verification should not rest on the answers of what it checks
    url = database_url or cli_settings().database_url
    try:
        result = asyncio.run(_verify(url))
    except (SQLAlchemyError, OSError) as exc:  # no verdict: neither intact nor broken
        where = make_url(url).render_as_string(hide_password=True)
        err_console.print(f"Cannot read the audit trail at {where}: {exc}", markup=False,
                          highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.first_break is None:
        console.print(f"intact: {result.checked} records in {result.chains} chains")
    else:
        found = result.first_break
        err_console.print(f"BROKEN ({found.problem}) in chain {found.chain} at #"
                          f"{found.chain_seq}, record {found.record_id}: {found.detail}",
                          markup=False, highlight=False)
    if not result.intact:
        raise typer.Exit(1)


@cli.command("list")
def list_(
    actor: str = typer.Option(None), resource_type: str = typer.Option(None),
    resource_id: str = typer.Option(None), action: str = typer.Option(None),
    service: str = typer.Option(None), outcome: int = typer.Option(None),
    since: str = typer.Option(None, help="RFC 3339 time."), until: str = typer.Option(None),
    limit: int = typer.Option(50), as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The newest audit records (through the log-collector; needs logs:audit)."""
    filters = dict(zip(FILTERS, (actor, resource_type, resource_id, action, service,
                                 outcome, since, until), strict=True))
    page = call(LogCollectorClient, lambda c: c.audit(limit=limit, **filters))
    if as_json:
        print_json([item.model_dump(mode="json") for item in page.items])
        return
    table = Table(title="audit")
    for column in ("time", "actor", "action", "resource", "outcome", "service"):
        table.add_column(column)
    for i in page.items:
        table.add_row(i.time.isoformat(), i.actor or "-", i.action,
                      f"{i.resource_type}:{i.resource_id or '-'}", str(i.outcome), i.service)
    console.print(table)


@cli.command()
def export(
    actor: str = typer.Option(None), resource_type: str = typer.Option(None),
    action: str = typer.Option(None), since: str = typer.Option(None),
    until: str = typer.Option(None),
) -> None:
    """Every matching record as JSON Lines on stdout, oldest first."""
    async def lines(c: LogCollectorClient) -> None:
        async for line in c.audit_export(actor=actor, resource_type=resource_type,
                                         action=action, since=since, until=until):
            sys.stdout.write(line + "\n")

    call(LogCollectorClient, lines)
