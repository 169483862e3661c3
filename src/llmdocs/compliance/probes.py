"""Controls checked against the running services over the network: transport security
(does a plain-HTTP connection get refused?), anonymous calls refused on every
non-public operation of each service's OpenAPI document, and the audit chain."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from llmdocs.compliance.report import Control
from llmdocs.core.app import PUBLIC_PATHS
from llmdocs.core.config import SERVICE_NAMES, Settings

DUMMY_ID = "compliance-probe-0"  # fills every path parameter: no such resource exists
PARALLEL = 8  # probes in flight at once: a scan, not a load test
METHODS = ("get", "post", "put", "patch", "delete")
INCONCLUSIVE = (429, 503)  # limited or down: says nothing about authentication
PARAMETER = re.compile(r"\{[^}]+\}")
SHOWN = 12  # open operations named in the evidence; the count says the rest


@dataclass
class Deployment:
    """Each service's first URL and the OpenAPI document it serves, when reachable."""

    urls: dict[str, str]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)


async def discover(http: httpx.AsyncClient, settings: Settings,
                   services: Iterable[str] = SERVICE_NAMES) -> Deployment:
    """Fetch each configured service's OpenAPI document (public on every service)."""
    found = Deployment(urls={key: settings.url_for(key) for key in services})

    async def fetch(key: str, url: str) -> None:
        try:
            answer = await http.get(f"{url}/openapi.json")
            answer.raise_for_status()
            found.documents[key] = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            found.unreachable[key] = f"{url}: {type(exc).__name__}"

    await asyncio.gather(*(fetch(key, url) for key, url in found.urls.items()))
    return found


def _plain(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("http", parts.netloc, "/health/live", "", ""))


async def tls_control(http: httpx.AsyncClient, deployment: Deployment,
                      settings: Settings) -> Control:
    """Every reachable service speaks TLS only: its URL is https and a plain-HTTP
    request to the same port gets no HTTP answer."""
    title = "TLS (mutual TLS between services) on every service"
    plain, refused = [], []
    for key in sorted(deployment.documents):
        url = deployment.urls[key]
        if urlsplit(url).scheme != "https":
            plain.append(f"{key} at {url}")
            continue
        try:
            answer = await http.get(_plain(url))
            plain.append(f"{key} answered plain HTTP with {answer.status_code}")
        except httpx.HTTPError:
            refused.append(key)
    setting = (f"mutual TLS on ({settings.tls_dir or settings.tls_cert})" if settings.tls
               else "LLMDOCS_TLS_DIR unset")
    if deployment.unreachable:
        setting += f"; not reachable: {'; '.join(sorted(deployment.unreachable.values()))}"
    if not deployment.documents:
        return Control(id="tls", title=title, status="warn",
                       evidence=f"no service reachable; {setting}")
    if plain:
        return Control(id="tls", title=title, status="fail",
                       evidence=f"plain HTTP: {'; '.join(plain)}; {setting}")
    return Control(id="tls", title=title, status="pass", evidence=(
        f"plain HTTP refused by {', '.join(refused)}; {setting}"))


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The (method, path) of every operation a caller must authenticate for."""
    found = []
    for path, item in (document.get("paths") or {}).items():
        if path in PUBLIC_PATHS or not isinstance(item, dict):
            continue
        found += [(method.upper(), path) for method in METHODS if method in item]
    return found


async def anonymous_control(http: httpx.AsyncClient, deployment: Deployment) -> Control:
    """Call every non-public operation without a token: each must answer 401."""
    title = "Every non-public route refuses an anonymous call"
    gate = asyncio.Semaphore(PARALLEL)
    open_ops: list[str] = []
    unsure: list[str] = []

    async def probe(key: str, method: str, path: str) -> None:
        target = deployment.urls[key] + PARAMETER.sub(DUMMY_ID, path)
        async with gate:
            try:
                answer = await http.request(method, target)
            except httpx.HTTPError as exc:
                unsure.append(f"{key} {method} {path}: {type(exc).__name__}")
                return
        if answer.status_code in INCONCLUSIVE:
            unsure.append(f"{key} {method} {path}: {answer.status_code}")
        elif answer.status_code != 401:
            open_ops.append(f"{key} {method} {path} -> {answer.status_code}")

    jobs = [(key, method, path) for key, document in sorted(deployment.documents.items())
            for method, path in operations(document)]
    probed = len(jobs)
    await asyncio.gather(*(probe(*job) for job in jobs))
    services = ", ".join(sorted(deployment.documents)) or "none"
    if open_ops:
        shown = "; ".join(sorted(open_ops)[:SHOWN])
        more = f" and {len(open_ops) - SHOWN} more" if len(open_ops) > SHOWN else ""
        return Control(id="anonymous", title=title, status="fail", evidence=(
            f"{len(open_ops)} of {probed} operations answered without a token: "
            f"{shown}{more}"))
    if not deployment.documents:
        return Control(id="anonymous", title=title, status="warn",
                       evidence="no service reachable: nothing probed")
    if unsure or not probed:
        return Control(id="anonymous", title=title, status="warn", evidence=(
            f"{probed - len(unsure)} of {probed} operations on {services} answered 401; "
            f"inconclusive: {'; '.join(sorted(unsure)[:SHOWN]) or 'no operation'}"))
    return Control(id="anonymous", title=title, status="pass", evidence=(
        f"all {probed} non-public operations of {services} answered 401 without a token"))


async def audit_control(http: httpx.AsyncClient, deployment: Deployment,
                        token: str | None) -> Control:
    """The log-collector's audit chain, verified by its own verify operation."""
    title = "Audit trail hash chain verified"
    document = deployment.documents.get("logcollector")
    if document is None:
        return Control(id="audit", title=title, status="warn", evidence=(
            "audit trail not available: the log-collector is not reachable"))
    verify = [(method, path) for method, path in operations(document)
              if "audit" in path and path.rstrip("/").endswith("verify")]
    if not verify:
        return Control(id="audit", title=title, status="warn", evidence=(
            "audit trail not available: the log-collector has no audit verify operation"))
    method, path = verify[0]
    if token is None:
        return Control(id="audit", title=title, status="warn", evidence=(
            f"no token to call {method} {path}: set LLMDOCS_TOKEN (an auditor's)"))
    try:
        answer = await http.request(method, deployment.urls["logcollector"] + path,
                                    headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return Control(id="audit", title=title, status="warn",
                       evidence=f"{method} {path} failed: {type(exc).__name__}")
    evidence = f"{method} {path} -> {answer.status_code}: {answer.text[:300]}"
    try:
        verdict = answer.json() if answer.is_success else {}
    except ValueError:
        verdict = {}
    # the audit trail's verification says `intact`; a plain `ok` is read the same way
    intact = isinstance(verdict, dict) and bool(verdict.get("intact", verdict.get("ok")))
    return Control(id="audit", title=title, status="pass" if intact else "fail",
                   evidence=evidence)
