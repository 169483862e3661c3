"""Fetching and parsing an OpenAPI 3.0/3.1 spec within bounds; every failure is a `SpecError`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urljoin

import httpx
import yaml  # type: ignore[import-untyped]

from llmdocs.core.fetch import Network, guarded_client
from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.swagger import convert

SPEC_PATHS = ("/openapi.json", "/openapi.yaml", "/openapi.yml", "/swagger.json",
              "/v3/api-docs", "/api-docs", "/api/openapi.json", "/docs/openapi.json")


class SpecError(Exception):
    """The spec cannot be used; the message says why."""


class Unreachable(SpecError):
    """The service did not answer at all."""


# --- fetching (with a client from llmdocs.core.fetch) -------------------------------

async def _get_bounded(http: httpx.AsyncClient, url: str, max_bytes: int) -> httpx.Response:
    """GET without reading more than `max_bytes` of body."""
    async with http.stream("GET", url) as response:
        await read_bounded(response, max_bytes)
        return response


async def read_bounded(response: httpx.Response, max_bytes: int) -> bytes:
    """A streamed response's body, refused past `max_bytes` (a SpecError)."""
    url = response.request.url
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SpecError(f"the answer at {url} is {declared} bytes; the limit is {max_bytes}")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SpecError(f"the answer at {url} is larger than {max_bytes} bytes")
        chunks.append(chunk)
    response._content = b"".join(chunks)
    return response._content


async def fetch_spec(
    http: httpx.AsyncClient, base_url: str, spec_url: str | None, bounds: SpecBounds
) -> tuple[str, dict[str, Any]]:
    """The spec document and where it was found (see `fetch_spec_source`)."""
    url, _, doc = await fetch_spec_source(http, base_url, spec_url, bounds)
    return url, doc


async def fetch_spec_source(
    http: httpx.AsyncClient, base_url: str, spec_url: str | None, bounds: SpecBounds
) -> tuple[str, bytes, dict[str, Any]]:
    """Where the spec was found, its bytes as served and the document: at `spec_url`
    (absolute, or relative to the base URL) or at the first usual path that serves one."""
    # the whole search has a deadline: the client's timeout bounds each read, and a
    # server sending a byte just before each would otherwise hold the caller at will
    base = base_url.rstrip("/")
    try:
        candidates = ([urljoin(base + "/", spec_url)] if spec_url
                      else [base + p for p in SPEC_PATHS])
    except ValueError as exc:  # "http://[::1"
        raise Unreachable(f"{spec_url or base_url} is not a valid URL: {exc}") from None
    deadline = bounds.fetch_deadline_seconds
    try:
        async with asyncio.timeout(deadline):
            return await _first_spec(http, candidates, spec_url is not None, bounds)
    except TimeoutError:
        raise SpecError(f"the spec did not arrive within {deadline:g} s "
                        "(LLMDOCS_DISCOVERY_FETCH_DEADLINE_SECONDS)") from None


async def fetch_spec_url(url: str, blocked: Sequence[Network], bounds: SpecBounds,
                         verify: ssl.SSLContext | bool = True
                         ) -> tuple[str, bytes, dict[str, Any]]:
    """The spec a user named by URL, as `fetch_spec_source` gives it, fetched only with the
    guarded client: redirects followed, each connection checked against `blocked`;
    `verify` as `guarded_client` takes it."""
    async with guarded_client(blocked, timeout=bounds.fetch_timeout_seconds,
                              follow_redirects=True, verify=verify) as http:
        return await fetch_spec_source(http, url, url, bounds)


async def _first_spec(http: httpx.AsyncClient, candidates: list[str], named: bool,
                      bounds: SpecBounds) -> tuple[str, bytes, dict[str, Any]]:
    tried: list[str] = []
    for url in candidates:
        try:
            response = await _get_bounded(http, url, bounds.max_spec_bytes)
        # refused, timed out, a bad scheme or URL, a redirect loop
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise Unreachable(f"{url} is unreachable: {type(exc).__name__} {exc}") from exc
        if response.status_code != 200:
            tried.append(f"{url} → HTTP {response.status_code}")
            continue
        try:
            return url, response.content, parse_spec(response.content, bounds)
        except SpecError as exc:
            if named:
                raise
            tried.append(f"{url} → {exc}")
    raise SpecError("no OpenAPI spec found: " + "; ".join(tried))


# --- parsing ----------------------------------------------------------------------

def _walk(doc: Any) -> Iterator[tuple[Any, int]]:
    """Every value with its depth, iteratively (a deep document cannot overflow the
    stack) and with shared YAML aliases visited each time they are used."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        yield value, depth
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _check_size(doc: Any, bounds: SpecBounds) -> None:
    for count, (_, depth) in enumerate(_walk(doc), start=1):
        if count > bounds.max_spec_nodes:
            raise SpecError(f"the spec has more than {bounds.max_spec_nodes} values "
                            "(YAML aliases counted where used)")
        if depth > bounds.max_spec_depth:
            raise SpecError(f"the spec nests deeper than {bounds.max_spec_depth} levels")


def parse_spec(raw: bytes, bounds: SpecBounds) -> dict[str, Any]:
    """JSON or YAML into a checked OpenAPI 3.0/3.1 document (Swagger 2.0 converted)."""
    try:
        text = raw.decode("utf-8-sig")
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise SpecError(f"the spec is neither JSON nor YAML: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise SpecError("the spec is not a JSON/YAML object")
    if "swagger" in doc:
        if not str(doc["swagger"]).startswith("2."):
            raise SpecError(f"Swagger {doc['swagger']} is not supported; Swagger 2.0 and "
                            "OpenAPI 3.0/3.1 are")
        _check_size(doc, bounds)
    # checked again below: the conversion may copy a body's media for each content type
    try:
        spec: dict[str, Any] = convert(doc) if "swagger" in doc else doc
    except (TypeError, AttributeError, ValueError) as exc:  # a part of the wrong kind
        raise SpecError(f"the Swagger 2.0 spec is malformed: {str(exc)[:200]}") from None
    version = str(spec.get("openapi", ""))
    if not version.startswith(("3.0", "3.1")):
        raise SpecError(f"not an OpenAPI 3.0/3.1 document (openapi: {version or 'missing'})")
    _check_size(spec, bounds)
    if not isinstance(spec.get("paths", {}), dict):
        raise SpecError("'paths' is not an object")
    return spec


def spec_hash(doc: dict[str, Any]) -> str:
    """Of the content, not the bytes: the same spec as JSON or YAML hashes the same."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
