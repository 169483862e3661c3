"""`llmdocs diff OLD NEW`: what changed between two specs, for people and for CI; it
reads files or URLs itself, so it needs no service running."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from llmdocs.cli_support import console, err_console, print_json
from llmdocs.openapi import SpecBounds, SpecError, fetch_spec_source, parse_spec
from llmdocs.openapi.diff import Diff, diff


class FailOn(StrEnum):
    breaking = "breaking"
    any = "any"
    none = "none"


async def _fetch(url: str, bounds: SpecBounds) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=bounds.fetch_timeout_seconds,
                                 follow_redirects=True) as http:
        return (await fetch_spec_source(http, url, url, bounds))[2]


def load(source: str, bounds: SpecBounds) -> dict[str, Any]:
    """A spec from a file or an http(s) URL, parsed within the bounds."""
    if source.startswith(("http://", "https://")):
        return asyncio.run(_fetch(source, bounds))
    path = Path(source)
    try:
        if path.stat().st_size > bounds.max_spec_bytes:
            raise SpecError(f"{source} is larger than {bounds.max_spec_bytes} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read {source}: {exc.strerror}") from None
    return parse_spec(raw, bounds)


def table(result: Diff) -> Table:
    """The changes, breaking first, one row each."""
    summary = result.summary
    out = Table(title=f"{summary.breaking} breaking, {summary.non_breaking} non-breaking "
                "changes", title_justify="left")
    for column in ("", "operation", "change", "kind"):
        out.add_column(column)
    for change in result.ordered():
        out.add_row("[red]breaking[/red]" if change.breaking else "[green]ok[/green]",
                    change.operation or "(API)", change.message, change.kind)
    return out


def diff_command(
    old: str = typer.Argument(..., help="The base spec: a file or an http(s) URL."),
    new: str = typer.Argument(..., help="The changed spec: a file or an http(s) URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the diff as JSON."),
    fail_on: FailOn = typer.Option(
        FailOn.breaking, "--fail-on", help="Exit 1 when the diff has a breaking change "
        "(the default: a CI step fails where a client would), any change, or never."),
) -> None:
    """What changed between two OpenAPI specs (3.0, 3.1 or Swagger 2.0), breaking first;
    exit 2 when a spec cannot be read."""
    bounds = SpecBounds()
    try:
        result = diff(load(old, bounds), load(new, bounds), bounds)
    except SpecError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.changes:
        console.print(table(result))
    else:
        console.print("No changes.")
    failed = {FailOn.breaking: result.summary.breaking > 0,
              FailOn.any: bool(result.changes), FailOn.none: False}[fail_on]
    if failed:
        raise typer.Exit(1)
