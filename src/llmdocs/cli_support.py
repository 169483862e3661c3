"""What every `llmdocs <service> ...` command group shares: settings, a token, a client,
running a coroutine, and printing results."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from llmdocs import instance
from llmdocs.core.auth import issue_token
from llmdocs.core.client import ServiceClient, ServiceError
from llmdocs.core.config import Settings
from llmdocs.core.service import ServiceSpec

T = TypeVar("T")
C = TypeVar("C", bound=ServiceClient)
console = Console()
err_console = Console(stderr=True)


def cli_settings() -> Settings:
    """The environment's settings; unless they say which instance to call (a data dir, a
    secret or a token), those of the `llmdocs up` running for this user, wherever it runs."""
    settings = Settings()
    if settings.model_fields_set & {"data_dir", "jwt_secret", "token"}:
        return settings
    found = instance.running()
    if found is None:
        return settings
    if not found.key_in_data_dir:
        _refuse(f"The llmdocs running as process {found.pid} signs with LLMDOCS_JWT_SECRET: "
                "set it here too (or LLMDOCS_TOKEN).")
    urls: dict[str, Any] = {f"{key}_url": url for key, url in found.urls.items()
            if f"{key}_url" not in settings.model_fields_set}
    if found.tls_dir is not None and not settings.tls:  # its services answer TLS only
        urls["tls_dir"] = found.tls_dir
    return Settings(data_dir=found.data_dir, **urls)


def cli_token(settings: Settings) -> str:
    """The configured token; else one for the local user, short-lived, signed with the
    instance's key (never a new key: its tokens would be refused)."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    require_signing_key(settings)
    return issue_token(settings, f"user:{getpass.getuser()}", ["*"], ttl_seconds=600)


def require_signing_key(settings: Settings) -> None:
    """Exit saying why when no instance's signing key is at hand."""
    if settings.jwt_secret is None and not (settings.data_dir / "jwt-secret").exists():
        _refuse(f"No running llmdocs found in {instance.state_path()}, and no signing key in "
                f"{settings.data_dir.resolve()}: set LLMDOCS_DATA_DIR to the running "
                "instance's data dir, or LLMDOCS_TOKEN (see `llmdocs token`).")


def _refuse(reason: str) -> NoReturn:
    err_console.print(reason, style="red", markup=False, highlight=False)
    raise typer.Exit(2)


def client(cls: type[C], settings: Settings | None = None) -> C:
    settings = settings or cli_settings()
    return cls.for_service(settings, token=cli_token(settings))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a service's error becomes a message and exit code 1."""
    try:
        return asyncio.run(coro)
    except ServiceError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def call(cls: type[C], action: Callable[[C], Awaitable[T]], settings: Settings | None = None
         ) -> T:
    """Run `action` with a configured client of `cls`, its service's error an exit 1."""
    async def with_client() -> T:
        async with client(cls, settings) as c:
            return await action(c)

    return run(with_client())


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def service_cli(spec: ServiceSpec, client_cls: type[ServiceClient], name: str) -> typer.Typer:
    """A service's command group, with the commands every service has."""
    group = typer.Typer(name=name, help=f"{spec.title}: {spec.description}",
                        no_args_is_help=True)

    @group.command("info")
    def info() -> None:
        """What the service is and how it runs."""
        print_json(call(client_cls, lambda c: c.info()))

    return group
