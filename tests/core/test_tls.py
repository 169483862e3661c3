"""Mutual TLS with real certificates over real sockets: a served app refuses any client
without a certificate of its CA, binds service tokens to the client certificate, and
picks up rotated files without a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from typer.testing import CliRunner

from llmdocs.cli import app as cli_app
from llmdocs.core.app import create_service_app
from llmdocs.core.auth import Principal, delegated_token, issue_token, require, service_token
from llmdocs.core.certs import (
    Leaf,
    issue,
    load_authority,
    new_authority,
    read_leaf,
    write_pair,
)
from llmdocs.core.client import ServiceClient, Unauthorized
from llmdocs.core.config import Settings
from llmdocs.core.service import ServiceSpec
from llmdocs.core.tls import (
    CERTIFICATE_NAMES,
    client_identity,
    identities,
    service_identity,
)
from llmdocs.devservers import free_port
from llmdocs.healthcheck import READY, healthy
from llmdocs.runtime import Server, server_config
from llmdocs.services import HOOKS, all_specs, create_app

HANDSHAKE_REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError,
                     httpx.WriteError)


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(request: Request, principal: Principal = Depends(require("demo:read"))
                     ) -> dict[str, Any]:
        chain = request.scope["extensions"]["tls"]["client_cert_chain"]
        serial = x509.load_pem_x509_certificate(chain[0].encode()).serial_number
        return {"sub": principal.subject, "peer": sorted(identities(chain[0])),
                "serial": str(serial)}

    return router


def init(directory: Path, *args: str) -> None:
    result = CliRunner().invoke(cli_app, ["certs", *args, "--dir", str(directory)])
    assert result.exit_code == 0, result.output


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    init(directory, "init")
    return directory


@pytest.fixture
def tls_settings(settings: Settings, certs: Path) -> Settings:
    return settings.model_copy(update={"tls_dir": certs})


@pytest.fixture
async def served(tls_settings: Settings) -> AsyncIterator[str]:
    """A service (as the doc-store: its certificate) with a route that tells the caller
    and its client certificate, served over mutual TLS."""
    spec = ServiceSpec(key="docstore", name="doc-store", title="Demo", description="",
                       scope="demo", router=_router)
    port = free_port()
    server = Server(server_config(create_service_app(spec, tls_settings, hooks=HOOKS),
                                  "127.0.0.1", port, tls_settings, "docstore"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    yield f"https://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 15)


def context(certs: Path, name: str | None, ca: Path | None = None) -> ssl.SSLContext:
    """A client context trusting `ca` (the directory's CA), presenting `name`'s pair."""
    ctx = ssl.create_default_context(cafile=ca or certs / "ca.pem")
    if name is not None:
        ctx.load_cert_chain(certs / f"{name}.pem", certs / f"{name}-key.pem")
    return ctx


async def get(url: str, ctx: ssl.SSLContext, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(verify=ctx) as client:
        return await client.get(f"{url}/whoami", headers=headers)


def test_certificate_files_are_named_as_up_prints_the_services() -> None:
    assert {spec.key: spec.name for spec in all_specs()} == CERTIFICATE_NAMES


def test_init_writes_a_ca_and_a_pair_per_service_and_the_cli(certs: Path) -> None:
    names = {*CERTIFICATE_NAMES.values(), "cli"}
    assert {p.name for p in certs.iterdir()} == {"ca.pem", "ca-key.pem"} | {
        f"{n}{suffix}" for n in names for suffix in (".pem", "-key.pem")}
    assert all((certs / f"{n}-key.pem").stat().st_mode & 0o777 == 0o600
               for n in [*names, "ca"])
    cert = x509.load_pem_x509_certificate((certs / "doc-store.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"doc-store", "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert service_identity("docstore") in san.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90


def test_issue_makes_operator_and_service_certificates_and_init_keeps_a_ca(
        certs: Path) -> None:
    init(certs, "issue", "ci-job")
    init(certs, "issue", "docstore")  # a service's, by its key: under its name again
    leaf, days = read_leaf(certs / "ci-job.pem")
    assert (leaf.identity, leaf.server, leaf.hosts, days) == (
        client_identity("ci-job"), False, (), 90)
    assert read_leaf(certs / "doc-store.pem")[0].identity == service_identity("docstore")
    again = CliRunner().invoke(cli_app, ["certs", "init", "--dir", str(certs)])
    assert again.exit_code == 1 and "already holds a CA" in again.output


def test_a_certificate_goes_with_its_key_and_ca(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LLMDOCS_TLS_CERT, LLMDOCS_TLS_KEY"):
        Settings(tls_cert=tmp_path / "a.pem")
    pair = Settings(tls_cert=tmp_path / "a.pem", tls_key=tmp_path / "k.pem",
                    tls_ca=tmp_path / "ca.pem", docstore_url="http://doc-store:5087")
    assert pair.tls and pair.urls_for("docstore") == ["https://doc-store:5087"]


async def test_a_client_without_a_certificate_of_the_ca_is_refused(
        served: str, certs: Path, tmp_path: Path) -> None:
    with pytest.raises(HANDSHAKE_REFUSED):
        await get(served, context(certs, None))
    other = tmp_path / "other"
    init(other, "init")
    # the other CA's client certificate, and trusting our CA so only the client is wrong
    with pytest.raises(HANDSHAKE_REFUSED):
        await get(served, context(other, "cli", ca=certs / "ca.pem"))
    ca, _ = load_authority(certs)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    write_pair(certs, "expired", *issue(ca, Leaf("expired", client_identity("expired"),
                                                 server=False), days=7, now=long_ago))
    with pytest.raises(HANDSHAKE_REFUSED):
        await get(served, context(certs, "expired"))
    with pytest.raises(HANDSHAKE_REFUSED):  # plain HTTP on the TLS port
        async with httpx.AsyncClient() as client:
            await client.get(served.replace("https", "http") + "/health/live")


async def test_service_tokens_count_only_with_their_services_certificate(
        served: str, certs: Path, tls_settings: Settings) -> None:
    as_gateway = service_token(tls_settings, "gateway")
    refused = await get(served, context(certs, "orchestrator"), as_gateway)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert "service:gateway" in refused.json()["detail"]
    answered = await get(served, context(certs, "llm-gateway"), as_gateway)
    assert answered.status_code == 200
    assert answered.json()["peer"] == [service_identity("gateway")]
    # a service acting for a user: its actor is bound the same way
    user = Principal("user:ann", frozenset({"demo:read"}), {"exp": 2**40})
    on_behalf = delegated_token(tls_settings, "interpreter", user)
    assert (await get(served, context(certs, "cli"), on_behalf)).status_code == 401
    assert (await get(served, context(certs, "interpreter"), on_behalf)).status_code == 200
    # a user's own token from an operator's (the CLI's) certificate
    mine = issue_token(tls_settings, "user:ann", ["demo:read"])
    assert (await get(served, context(certs, "cli"), mine)).json()["sub"] == "user:ann"


async def test_service_clients_present_their_own_certificate(
        served: str, tls_settings: Settings) -> None:
    settings = tls_settings.model_copy(update={"docstore_url": served.replace("https",
                                                                              "http")})
    async with ServiceClient.for_service(settings, caller="gateway", target="docstore"
                                         ) as client:
        assert client.base_url.startswith("https://")  # the configured http URL, upgraded
        assert (await client.get_json("/whoami"))["peer"] == [service_identity("gateway")]
    async with ServiceClient.for_service(settings, target="docstore", token=service_token(
            settings, "gateway")) as cli:  # the CLI's certificate: a service token is no use
        with pytest.raises(Unauthorized):
            await cli.get_json("/whoami")


def _served_serial(url: str, certs: Path) -> int:
    """The serial number of the certificate the server presents on a new connection."""
    port = httpx.URL(url).port
    assert port is not None
    ctx = context(certs, "cli")
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_rotated_files_are_used_without_a_restart(
        served: str, certs: Path, tls_settings: Settings, tmp_path: Path) -> None:
    kept = tmp_path / "kept"  # the gateway's pair before the rotation
    kept.mkdir()
    for name in ("llm-gateway.pem", "llm-gateway-key.pem"):
        (kept / name).write_bytes((certs / name).read_bytes())
    old_serial = await asyncio.to_thread(_served_serial, served, certs)
    settings = tls_settings.model_copy(update={"docstore_url": served})
    async with ServiceClient.for_service(settings, caller="gateway",
                                         target="docstore") as client:
        # the server closes this connection after answering: the next call opens one
        before = await client.get_json("/whoami", headers={"Connection": "close"})
        init(certs, "rotate", "--new-ca")
        after = await client.get_json("/whoami")
    assert after["serial"] != before["serial"]  # the client presents its new certificate
    new_serial = await asyncio.to_thread(_served_serial, served, certs)
    assert new_serial != old_serial  # and the server its new one
    current = x509.load_pem_x509_certificate((certs / "doc-store.pem").read_bytes())
    assert new_serial == current.serial_number
    # certificates of the old CA stay valid until they expire
    token = service_token(tls_settings, "gateway")
    assert (await get(served, context(kept, "llm-gateway", ca=certs / "ca.pem"), token)
            ).status_code == 200


async def test_a_certificate_of_a_ca_made_later_is_trusted_once_in_the_bundle(
        served: str, certs: Path) -> None:
    newer = new_authority(30)
    write_pair(certs, "late", *issue(newer, Leaf("late", client_identity("late"),
                                                 server=False), days=7))
    with pytest.raises(HANDSHAKE_REFUSED):
        await get(served, context(certs, "late"))
    bundle = (certs / "ca.pem").read_bytes() + newer.cert.public_bytes(Encoding.PEM)
    (certs / "ca.pem").write_bytes(bundle)
    assert (await get(served, context(certs, "late"))).status_code == 401  # no token: in


async def test_health_probes_work_with_tls_on(tls_settings: Settings) -> None:
    ports = {f"{key}_port": free_port() for key in CERTIFICATE_NAMES}  # none another's
    settings = tls_settings.model_copy(update=ports)
    app = create_app("docstore", settings)
    server = Server(server_config(app, "127.0.0.1", settings.docstore_port, settings,
                                  "docstore"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(healthy, settings)
        assert await asyncio.to_thread(healthy, settings, path=READY)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
