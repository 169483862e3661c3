"""`llmdocs diff OLD NEW`: what changed between two specs, for people and for CI; it
reads files or URLs itself, so it needs no service running; a doc-store document id
(`ID` or `ID@VERSION`) is read through the running analysis service."""

from __future__ import annotations

import asyncio
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from llmdocs.cli_support import client, console, err_console, print_json
from llmdocs.core.client import ServiceError, ServiceUnavailable
from llmdocs.openapi import SpecBounds, SpecError, fetch_spec_source, parse_spec
from llmdocs.openapi.diff import Diff, diff
from llmdocs.services.analysis.client import AnalysisClient

# a doc-store document id, with a version or without: what no file or URL looks like
_STORED = re.compile(r"^(?P<id>[A-Za-z0-9-]{1,36})(?:@(?P<version>[1-9][0-9]{0,8}))?$")


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


def stored(source: str) -> dict[str, Any] | None:
    """The analysis service's reference to a stored spec, when `source` names one: an
    id (`ID@VERSION` for a version) that is neither a URL nor an existing file."""
    found = _STORED.match(source)
    if found is None or Path(source).exists():
        return None
    version = found["version"]
    return {"document_id": found["id"], **({"version": int(version)} if version else {})}


def through_service(old: str, new: str, bounds: SpecBounds) -> Diff | None:
    """The diff by the running analysis service when OLD or NEW is a document id (a
    file or URL beside it is read here and sent inline); None when neither is."""
    refs = [stored(old), stored(new)]
    if refs == [None, None]:
        return None
    base, head = (ref or {"spec": load(source, bounds)}
                  for ref, source in zip(refs, (old, new), strict=True))

    async def diffed() -> Diff:
        async with client(AnalysisClient) as analysis:
            return await analysis.diff(base, head)

    try:
        return asyncio.run(diffed())
    except ServiceUnavailable as exc:
        raise SpecError(f"a document id is read by a running llmdocs, and its analysis "
                        f"service does not answer ({exc}): start one with `llmdocs up`, "
                        "or give files or URLs") from None
    except ServiceError as exc:  # an unknown id, a spec it cannot read, a refusal
        raise SpecError(str(exc)) from None


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
    old: str = typer.Argument(..., help="The base spec: a file, an http(s) URL or a "
                              "doc-store document id (ID or ID@VERSION)."),
    new: str = typer.Argument(..., help="The changed spec: a file, an http(s) URL or a "
                              "doc-store document id (ID or ID@VERSION)."),
    as_json: bool = typer.Option(False, "--json", help="Print the diff as JSON."),
    fail_on: FailOn = typer.Option(
        FailOn.breaking, "--fail-on", help="Exit 1 when the diff has a breaking change "
        "(the default: a CI step fails where a client would), any change, or never."),
) -> None:
    """What changed between two OpenAPI specs (3.0, 3.1 or Swagger 2.0), breaking first;
    exit 2 when a spec cannot be read."""
    bounds = SpecBounds()
    try:
        result = through_service(old, new, bounds)
        if result is None:
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
