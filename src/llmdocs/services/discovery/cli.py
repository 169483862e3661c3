"""`llmdocs services ...`: discovery and the service registry from the terminal.
Discovery goes to the discovery-agent; the registry and tools are read from the
orchestrator, which keeps them."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.discovery import spec
from llmdocs.services.discovery.client import DiscoveryClient
from llmdocs.services.orchestrator.client import OrchestratorClient

cli = service_cli(spec, DiscoveryClient, name="services")
AS_JSON = typer.Option(False, "--json", help="Print JSON.")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


@cli.command()
def discover(
    name: str = typer.Argument(None, help="Name to register it under (omit with --all)."),
    base_url: str = typer.Argument(None, help="Where the service answers."),
    spec_url: str = typer.Option(None, help="Spec URL, absolute or relative to BASE_URL."),
    all_: bool = typer.Option(False, "--all", help="Every llmdocs and registered service."),
    tool: list[str] = typer.Option(None, metavar="OPERATION_ID",
                                   help="An operation id to offer as an MCP tool "
                                   "(repeat; replaces the list; default: GET and HEAD)."),
    as_json: bool = AS_JSON,
) -> None:
    """Discover a service (health, OpenAPI spec, capabilities) and register it."""
    if not all_ and not (name and base_url):
        raise typer.BadParameter("give NAME and BASE_URL, or --all")

    async def discover(d: DiscoveryClient) -> list[dict[str, Any]]:
        results = [await d.discover(name, base_url, spec_url, tool or None)] if not all_ \
            else await d.discover_all()
        return [r.model_dump(mode="json") for r in results]

    results = call(DiscoveryClient, discover)
    if as_json:
        print_json(results)
    else:
        _table("discoveries", ["service", "status", "operations", "health", "error"],
               [[r["name"], r["status"], r["operation_count"], r["health"], r["error"] or ""]
                for r in results])
    if any(r["status"] == "failed" for r in results):
        raise typer.Exit(1)


@cli.command("list")
def list_services(as_json: bool = AS_JSON) -> None:
    """Every registered service."""

    services = [s.model_dump(mode="json")
                for s in call(OrchestratorClient, lambda o: o.list_services())]
    if as_json:
        print_json(services)
    else:
        _table("registered services", ["service", "url", "operations", "health", "spec"],
               [[s["name"], s["base_url"], s["operation_count"], s["health"]["status"],
                 s["spec_hash"][:12]] for s in services])


@cli.command()
def show(name: str, as_json: bool = AS_JSON) -> None:
    """One service's capabilities, grouped by tag and resource."""

    detail = call(OrchestratorClient, lambda o: o.get_service(name)
                  ).model_dump(mode="json", by_alias=True)
    if as_json:
        print_json(detail)
        return
    _table(f"{detail['name']} ({detail['title']} {detail['version']})",
           ["tag", "resource", "method", "path", "summary"],
           [[op["tag"], op["resource"], op["method"].upper(), op["path"], op["summary"]]
            for op in detail["operations"]])


@cli.command()
def tools(
    format: str = typer.Option("mcp", help="langchain, mcp or openai."),
    service: str = typer.Option(None, help="Only this service's tools."),
    as_json: bool = AS_JSON,
) -> None:
    """The tool catalog an LLM agent can call."""

    catalog = call(OrchestratorClient, lambda o: o.tools(format, service))
    if as_json:
        print_json(catalog)
    else:
        _table("tools", ["name", "description"],
               [[t.get("name") or t["function"]["name"],
                 t.get("description") or t["function"].get("description", "")]
                for t in catalog])


@cli.command()
def health(
    history: bool = typer.Option(False, "--history", help="Show changes of status."),
    as_json: bool = AS_JSON,
) -> None:
    """The ecosystem's health as the discovery-agent last found it."""

    report: Any = [h.model_dump(mode="json")
                   for h in call(DiscoveryClient, lambda d: d.history())] if history \
        else call(OrchestratorClient, lambda o: o.ecosystem_health()).model_dump(mode="json")
    if as_json:
        print_json(report)
    elif history:
        _table("health changes", ["at", "service", "from", "to", "reason"],
               [[h["at"], h["service"], h["from"], h["to"], h["reason"] or ""]
                for h in report])
    else:
        console.print(f"ecosystem: {report['status']}")
        _table("services", ["service", "status", "since", "reason"],
               [[name, h["status"], h["changed_at"] or "", h["reason"] or ""]
                for name, h in report["services"].items()])
