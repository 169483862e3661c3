"""The root `llmdocs` command."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from llmdocs import __version__, instance
from llmdocs.cli_diff import diff_command
from llmdocs.cli_support import (
    cli_settings,
    cli_token,
    console,
    err_console,
    print_json,
    require_signing_key,
)
from llmdocs.core.auth import issue_token
from llmdocs.core.client import ServiceClient, ServiceError, UpstreamError
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.roles import role_table
from llmdocs.core.service import ServiceSpec
from llmdocs.services import all_specs

app = typer.Typer(name="llmdocs", help="llmdocs: an LLM documentation ecosystem.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

for _key in SERVICE_NAMES:
    app.add_typer(importlib.import_module(f"llmdocs.services.{_key}.cli").cli)
app.add_typer(importlib.import_module("llmdocs.services.logcollector.audit_cli").cli)
app.command("ask")(importlib.import_module("llmdocs.services.interpreter.cli").ask)
app.command("diff")(diff_command)
app.command("check")(importlib.import_module("llmdocs.cli_check").check)
app.command("mcp")(importlib.import_module("llmdocs.mcp.stdio").mcp)
app.add_typer(importlib.import_module("llmdocs.keys").cli)
app.add_typer(importlib.import_module("llmdocs.cli_compliance").cli)
app.command("findings")(importlib.import_module("llmdocs.services.analysis.cli").findings)
app.add_typer(importlib.import_module("llmdocs.services.docstore.spaces_cli").cli)
app.add_typer(importlib.import_module("llmdocs.cli_certs").cli)
app.add_typer(importlib.import_module("llmdocs.services.orchestrator.privacy_cli").cli)


class LogFormat(StrEnum):
    console = "console"
    json = "json"


@app.command()
def version() -> None:
    """Print the llmdocs version."""
    console.print(__version__)


def _print_ready(settings: Settings, specs: list[ServiceSpec]) -> None:
    """What `up` started, a token for the CLI, and the portal's sign-in link."""
    table = Table(title=f"llmdocs {__version__} is up (embedded, data in {settings.data_dir})")
    table.add_column("service")
    table.add_column("url")
    for spec in all_specs():
        table.add_row(spec.name, settings.url_for(spec.key))
    console.print(table)
    token = issue_token(settings, "user:admin", ["*"], ttl_seconds=24 * 3600)
    console.print("Access token (admin, 24 h):")
    console.print(token, soft_wrap=True, markup=False, highlight=False)
    if any(spec.key == "web" for spec in specs):
        from llmdocs.services.web.sessions import sign_in_link
        from llmdocs.services.web.settings import WebSettings

        console.print("Sign in to the portal (this link works once):")
        console.print(sign_in_link(settings, WebSettings(), "user:admin"), soft_wrap=True,
                      markup=False, highlight=False)
    console.print("Press Ctrl-C to stop.")


@app.command()
def up(
    services: list[str] = typer.Option(None, "--service", "-s",
                                       help="Run only these services (default: all)."),
    example: bool = typer.Option(False, "--example",
                                 help="Once up, generate the worked example's document."),
    log_format: LogFormat | None = typer.Option(
        None, "--log-format", help="console (the default in a terminal: no line per "
        "request unless LLMDOCS_LOG_LEVEL=DEBUG) or json (the default otherwise: every "
        "line). LLMDOCS_LOG_FORMAT sets it too."),
    log_file: Path | None = typer.Option(None, "--log-file", dir_okay=False,
                                         help="Also write every log line, requests "
                                         "included, to this file as JSON."),
) -> None:
    """Start every service in this process, each on its own port."""
    from llmdocs.runtime import configure_up_logging
    from llmdocs.runtime import up as run_up
    from llmdocs.services import resolve
    from llmdocs.services.interpreter.example import run_example

    settings = Settings()
    if log_format is None and "log_format" not in settings.model_fields_set:
        log_format = LogFormat.console if sys.stderr.isatty() else LogFormat.json
    try:
        configure_up_logging(settings.log_level, log_format or settings.log_format, log_file)
    except OSError as exc:
        raise typer.BadParameter(f"cannot write to {log_file}: {exc.strerror}",
                                 param_hint="--log-file") from None
    specs = [resolve(name) for name in services] if services else all_specs()
    started: list[asyncio.Task[object]] = []  # keeps the example's task alive

    def ready() -> None:
        instance.record(settings, [spec.key for spec in specs])  # for the CLI, anywhere
        _print_ready(settings, specs)
        if example:
            started.append(asyncio.get_running_loop().create_task(run_example(settings)))

    with instance.forgotten_on_exit():
        _serving(run_up(settings, specs, on_ready=ready))


@app.command()
def serve(
    service: str = typer.Argument(..., help="Service to run, e.g. doc-store."),
    host: str = typer.Option(None, help="Interface to bind (default LLMDOCS_HOST)."),
    port: int = typer.Option(None, help="Port (default: the service's own)."),
) -> None:
    """Run one service in this process (distributed mode: run as many as you like)."""
    from llmdocs.runtime import serve as run_serve
    from llmdocs.services import resolve

    try:
        resolve(service)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    _serving(run_serve(Settings(), service, host, port))


def _serving(servers: Coroutine[Any, Any, None]) -> None:
    """Run the servers; one that cannot start ends the command with its reason."""
    from llmdocs.runtime import StartupError, run

    try:
        run(servers)
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


async def _health_of(settings: Settings, token: str) -> list[dict[str, Any]]:
    async def one(key: str, name: str) -> dict[str, Any]:
        url = settings.url_for(key)
        async with ServiceClient.for_service(settings, token=token, target=key) as c:
            c.retries = 1
            try:
                report = await c.health()
            except UpstreamError as exc:  # 503 carries the report of an unhealthy service
                report = exc.problem
            except ServiceError as exc:
                report = {"status": "unreachable", "error": str(exc)}
        return {"service": name, "url": url, **report}

    return list(await asyncio.gather(*(one(s.key, s.name) for s in all_specs())))


@app.command()
def health(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every service's health, as a table."""
    settings = cli_settings()
    reports = asyncio.run(_health_of(settings, cli_token(settings)))
    if as_json:
        print_json(reports)
    else:
        colours = {"healthy": "green", "degraded": "yellow"}
        table = Table(title="llmdocs health")
        for column in ("service", "status", "url", "uptime s", "dependencies"):
            table.add_column(column)
        for r in reports:
            colour = colours.get(r["status"], "red")
            deps = ", ".join(f"{d['name']} {d['status']} {d['latency_ms']:.1f}ms"
                             for d in r.get("dependencies", []))
            table.add_row(r["service"], f"[{colour}]{r['status']}[/{colour}]", r["url"],
                          str(r.get("uptime_seconds", "")), deps or r.get("error", ""))
        console.print(table)
    if any(r["status"] != "healthy" for r in reports):
        raise typer.Exit(1)


@app.command()
def token(
    scopes: str | None = typer.Option(
        None, help="Space- or comma-separated scopes, e.g. 'docs:read' (default: '*', "
        "or none beside --role)."),
    roles: list[str] = typer.Option([], "--role", help="A role whose scopes the token "
                                    "holds (viewer, editor, admin, auditor, …); repeatable."),
    subject: str = typer.Option("user:admin", "--sub", help="Who the token is for."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the claims too."),
) -> None:
    """Issue an access token signed with the running instance's key."""
    settings = cli_settings()
    require_signing_key(settings)
    given = scopes if scopes is not None else ("" if roles else "*")
    wanted = [s for s in given.replace(",", " ").split() if s]
    unknown = sorted(set(roles) - set(role_table(settings)))
    if unknown:  # services ignore a role they do not know: say so before it surprises
        err_console.print(f"warning: no role named {', '.join(unknown)} here "
                          "(LLMDOCS_ROLES): it grants no scopes", markup=False)
    value = issue_token(settings, subject, wanted, ttl_seconds=ttl, roles=roles)
    if as_json:
        console.print_json(json.dumps({"token": value, "sub": subject, "scopes": wanted,
                                       "roles": sorted(set(roles)), "expires_in": ttl}))
    else:
        print(value)


def main() -> None:
    """Run the CLI; settings the environment gets wrong end it with their reasons, not a
    traceback."""
    try:
        app()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            typer.echo(f"error: invalid setting {field}: "
                       f"{error['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None
