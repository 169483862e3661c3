"""Mutual TLS between services: the server and client contexts each service uses (its
own certificate, peers checked against the private CA), reloaded from rotated files
without a restart, and the peer certificate in the ASGI scope, where service tokens are
bound to it."""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem

log = structlog.get_logger(__name__)

IDENTITY_PREFIX = "spiffe://llmdocs/"
CLI_CERTIFICATE = "cli"  # the CLI's own certificate: `llmdocs certs init` writes it
# each service's certificate file, named as `llmdocs up` prints the service (its spec's
# name; tests/core/test_tls.py checks they agree)
CERTIFICATE_NAMES = {
    "orchestrator": "orchestrator", "gateway": "llm-gateway", "discovery": "discovery-agent",
    "docstore": "doc-store", "promptstore": "prompt-store", "interpreter": "interpreter",
    "logcollector": "log-collector", "analysis": "analysis", "notification": "notification",
    "web": "web",
}
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # the ASGI TLS extension's numbers


def service_identity(key: str) -> str:
    """The URI a service's certificate names it by: its tokens are bound to it."""
    return f"{IDENTITY_PREFIX}service/{key}"


def client_identity(name: str) -> str:
    """The URI an operator's, a CI job's or the CLI's certificate names it by."""
    return f"{IDENTITY_PREFIX}client/{name}"


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    ca: Path


def files_for(settings: Settings, key: str | None) -> TLSFiles | None:
    """The certificate, key and CA bundle the service `key` (None: the CLI) uses, or
    None when TLS is off; LLMDOCS_TLS_CERT/_KEY/_CA override the directory's files."""
    directory = settings.tls_dir
    if directory is None and settings.tls_cert is None:
        return None
    name = CERTIFICATE_NAMES.get(key, key) if key else CLI_CERTIFICATE
    cert = settings.tls_cert or Path(directory or ".") / f"{name}.pem"
    private = settings.tls_key or Path(directory or ".") / f"{name}-key.pem"
    ca = settings.tls_ca or Path(directory or ".") / "ca.pem"
    return TLSFiles(cert, private, ca)


class ReloadingContext(ssl.SSLContext):
    """An SSL context that loads its certificate, key and CA bundle again once the files
    change: a handshake after `refresh()` uses the new ones, open connections go on."""

    files: TLSFiles
    _loaded: tuple[tuple[int, int, int], ...] | None

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        stats = (os.stat(path) for path in (self.files.cert, self.files.key, self.files.ca))
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)

    def _load_into(self, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self.files.cert, self.files.key)
        context.load_verify_locations(self.files.ca)

    def refresh(self) -> None:
        """Load the files again if they changed; files caught mid-rotation (a key that
        does not match its certificate yet) leave the old ones in use until next time."""
        try:
            stamp = self._stamp()
            if stamp == self._loaded:
                return
            # a scratch context first: a failed load must not leave this one half-loaded
            self._load_into(ssl.SSLContext(self.protocol))
            self._load_into(self)
        except (OSError, ssl.SSLError) as exc:
            log.warning("tls files not reloaded", cert=str(self.files.cert), error=str(exc))
            return
        if self._loaded is not None:
            log.info("tls files reloaded", cert=str(self.files.cert))
        self._loaded = stamp


def _context(protocol: int, files: TLSFiles) -> ReloadingContext:
    context = ReloadingContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED  # a server asks every client for its certificate
    context.files = files
    context._load_into(context)  # unreadable files fail the start, saying which
    context._loaded = context._stamp()
    return context


def server_context(files: TLSFiles, *, browsers: bool = False) -> ReloadingContext:
    """A server's context; one that `browsers` reach asks for a client certificate and
    checks one that comes, but takes a connection without (people sign in with a session)."""
    context = _context(ssl.PROTOCOL_TLS_SERVER, files)
    if browsers:
        context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


# client contexts by files: every client of a process presenting one certificate shares
# one context (and its reloads)
_client_contexts: dict[tuple[TLSFiles, bool], ReloadingContext] = {}


def client_context(settings: Settings, key: str | None, *, public: bool = False
                   ) -> ReloadingContext | None:
    """The context a client of service `key` (None: the CLI) connects with, or None
    when TLS is off: it presents that certificate and trusts the CA bundle only, and
    with `public` the system's CAs too (a client that also fetches others' addresses)."""
    files = files_for(settings, key)
    if files is None:
        return None
    context = _client_contexts.get((files, public))
    if context is None:
        context = _context(ssl.PROTOCOL_TLS_CLIENT, files)
        if public:
            context.load_default_certs()
        _client_contexts[files, public] = context
    return context


@lru_cache(maxsize=256)
def identities(pem: str) -> frozenset[str]:
    """The URIs a certificate names (its subject alternative names)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(san.get_values_for_type(x509.UniformResourceIdentifier))


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension's fields for a connection's verified peer."""
    der = ssl_object.getpeercert(binary_form=True)
    name = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {"server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": name, "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None}


class _WithPeer:
    """The app, with the connection's TLS facts in each request's scope."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})["tls"] = self.tls
        await self.app(scope, receive, send)


class MutualTLSProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, which reloads rotated files before each connection's
    handshake and puts the client certificate in the scope (uvicorn does neither)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if isinstance(config.ssl, ReloadingContext):  # made before the TLS handshake starts
            config.ssl.refresh()
        super().__init__(config, server_state, app_state, _loop)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithPeer(self.app, tls_extension(ssl_object))


def check_peer(scope: Scope, caller: str) -> None:
    """A service's token (or one a service sends acting for someone, `caller` then being
    its actor) counts only over a connection whose client certificate names that service:
    a stolen token is no use from another workload. Calls without a TLS connection (TLS
    off, in-process calls) are not bound."""
    if not caller.startswith("service:"):
        return
    tls = scope.get("extensions", {}).get("tls")
    if tls is None:
        return
    chain = tls.get("client_cert_chain") or []
    key = caller.removeprefix("service:")
    if not chain or service_identity(key) not in identities(chain[0]):
        raise Problem(401, f"The access token is {caller}'s, but the connection's client "
                      f"certificate is not: a service token is only valid from the service "
                      "it names.", headers={"WWW-Authenticate":
                                            'Bearer realm="llmdocs", error="invalid_token"'})
