"""`llmdocs certs`: the private CA and certificates for mutual TLS between services."""

from __future__ import annotations

from pathlib import Path

import typer

from llmdocs.core.certs import (
    CertificateError,
    Leaf,
    issue,
    load_authority,
    new_authority,
    rotate,
    write_authority,
    write_pair,
)
from llmdocs.core.tls import CLI_CERTIFICATE, client_identity, service_identity
from llmdocs.services import all_specs, builtin

cli = typer.Typer(name="certs", no_args_is_help=True,
                  help="Certificates for mutual TLS between services (LLMDOCS_TLS_DIR).")

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
DirOption = typer.Option(..., "--dir", file_okay=False, help="Where the certificates live.")
DaysOption = typer.Option(90, "--days", min=1, help="Lifetime of each certificate.")


def _service_leaves(hosts: list[str]) -> list[Leaf]:
    """Each service's certificate: for its name, its key, the local addresses and the
    `--hosts` (`{name}` and `{key}` in one stand for each service's)."""
    return [Leaf(spec.name, service_identity(spec.key), (
        spec.name, spec.key, *LOCAL_HOSTS,
        *(host.format(name=spec.name, key=spec.key) for host in hosts)))
        for spec in all_specs()]


def _leaf(name: str) -> Leaf:
    """A service's certificate by its name or key; any other name an operator's (or a CI
    job's), which only connects."""
    key = builtin(name)
    if key is None:
        return Leaf(name, client_identity(name), server=False)
    leaf = next(leaf for leaf in _service_leaves([]) if leaf.identity == service_identity(key))
    return leaf


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@cli.command("init")
def init(
    directory: Path = DirOption,
    hosts: str = typer.Option("", "--hosts", help="More host names for every service's "
                              "certificate, comma-separated; {name} and {key} stand for "
                              "the service's, e.g. 'llmdocs-{name}.docs.svc'."),
    days: int = DaysOption,
    ca_days: int = typer.Option(365, "--ca-days", min=1, help="Lifetime of the CA."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA."),
) -> None:
    """Create a CA and a certificate for each service and for the CLI."""
    if (directory / "ca-key.pem").exists() and not force:
        raise _fail(CertificateError(f"{directory} already holds a CA: use `llmdocs certs "
                                     "rotate`, or --force to replace it"))
    ca = new_authority(ca_days)
    write_authority(directory, ca)
    leaves = [*_service_leaves([h.strip() for h in hosts.split(",") if h.strip()]),
              Leaf(CLI_CERTIFICATE, client_identity(CLI_CERTIFICATE), server=False)]
    for leaf in leaves:
        write_pair(directory, leaf.name, *issue(ca, leaf, days))
    typer.echo(f"wrote ca.pem, ca-key.pem and {', '.join(leaf.name for leaf in leaves)} "
               f"(NAME.pem, NAME-key.pem) to {directory}")


@cli.command("issue")
def issue_one(
    name: str = typer.Argument(..., help="An operator's or CI job's name, or a service's."),
    directory: Path = DirOption,
    days: int = DaysOption,
) -> None:
    """Issue NAME.pem and NAME-key.pem, signed by the directory's CA."""
    try:
        ca, _ = load_authority(directory)
    except CertificateError as exc:
        raise _fail(exc) from None
    leaf = _leaf(name)
    write_pair(directory, leaf.name, *issue(ca, leaf, days))
    typer.echo(f"wrote {leaf.name}.pem and {leaf.name}-key.pem ({leaf.identity})")


@cli.command("rotate")
def rotate_all(
    directory: Path = DirOption,
    new_ca: bool = typer.Option(False, "--new-ca", help="Also roll the CA; the old one "
                                "stays in ca.pem so its certificates stay valid."),
    ca_days: int = typer.Option(365, "--ca-days", min=1, help="Lifetime of a new CA."),
) -> None:
    """Issue every certificate of the directory anew; running services pick them up."""
    try:
        rotated = rotate(directory, ca_days if new_ca else None)
    except CertificateError as exc:
        raise _fail(exc) from None
    typer.echo(f"rotated {', '.join(rotated) or 'nothing'} in {directory}")
