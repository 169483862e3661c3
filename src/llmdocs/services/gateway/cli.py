"""`llmdocs llm ...`: the llm-gateway from the terminal."""

from __future__ import annotations

import typer
from rich.table import Table

from llmdocs.cli_support import call, console, print_json, service_cli
from llmdocs.services.gateway import spec
from llmdocs.services.gateway.client import GatewayClient

cli = service_cli(spec, GatewayClient, name="llm")


@cli.command()
def ask(
    prompt: str = typer.Argument(..., help="what to ask"),
    model: str = typer.Option("smollm2", "--model", "-m", help="model alias"),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    temperature: float | None = typer.Option(None, "--temperature"),
) -> None:
    """Ask a model; the answer streams to the terminal as it is generated."""

    async def stream(gateway: GatewayClient) -> None:
        async for piece in gateway.stream([{"role": "user", "content": prompt}],
                                          model=model, max_tokens=max_tokens,
                                          temperature=temperature):
            console.print(piece, end="", soft_wrap=True, markup=False, highlight=False)

    call(GatewayClient, stream)
    console.print()


@cli.command()
def providers(probe: bool = typer.Option(False, "--probe", help="call each provider")) -> None:
    """Configured providers, their circuit state, latency and prices."""

    data = call(GatewayClient, lambda gateway: gateway.providers(probe))
    table = Table("provider", "kind", "trusted", "models", "circuit", "latency ms", "healthy")
    for row in data["providers"]:
        latency = row["latency_ms"]
        table.add_row(row["name"], row["kind"], str(row["trusted"]), ", ".join(row["models"]),
                      row["circuit"], "-" if latency is None else f"{latency:.1f}",
                      str(row.get("healthy", "-")))
    console.print(table)


@cli.command()
def usage(
    user_id: str | None = typer.Option(None, "--user", help="one user (admins only)"),
    since: str | None = typer.Option(None, "--since", help="YYYY-MM-DD"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Spend and tokens by user, key, model and day."""

    data = call(GatewayClient, lambda gateway: gateway.usage(user_id, since))
    if as_json:
        print_json(data)
        return
    for name in ("by_user", "by_model", "by_day"):
        table = Table(name.removeprefix("by_"), "calls", "prompt", "completion", "cost $",
                      "cached", title=name.replace("_", " "))
        for row in data[name]:
            table.add_row(str(row["key"]), str(row["calls"]), str(row["prompt_tokens"]),
                          str(row["completion_tokens"]), f"{row['cost']:.6f}",
                          str(row["cached_calls"]))
        console.print(table)
