"""Finding, parsing and analysing an OpenAPI 3.0/3.1 spec, within bounds.

Every way a spec can be wrong (unreachable, not a spec, too big, nested too deep,
aliases or `$ref`s that expand without end, too many operations) ends as a `SpecError`
with a reason a person can act on; cyclic `$ref`s are cut and marked, not followed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.orchestrator.schemas import Operation, Parameter, RequestBody

SPEC_PATHS = ("/openapi.json", "/openapi.yaml", "/openapi.yml", "/swagger.json",
              "/v3/api-docs", "/api-docs", "/api/openapi.json", "/docs/openapi.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
_SLUG = re.compile(r"[^A-Za-z0-9]+")


class SpecError(Exception):
    """The spec cannot be used; the message says why."""


class Unreachable(SpecError):
    """The service did not answer at all."""


@dataclass
class Analysis:
    spec_url: str
    spec_hash: str
    title: str
    version: str
    openapi_version: str
    api_prefix: str
    operations: list[Operation]
    warnings: list[str] = field(default_factory=list)


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
    http: httpx.AsyncClient, base_url: str, spec_url: str | None, bounds: DiscoverySettings
) -> tuple[str, dict[str, Any]]:
    """The spec document and where it was found: at `spec_url` (absolute, or relative to
    the base URL) or at the first usual path that serves one. The whole search has a
    deadline: the client's timeout bounds each read, and a server that sends a byte
    just before each one would otherwise hold the caller for as long as it likes."""
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


async def _first_spec(http: httpx.AsyncClient, candidates: list[str], named: bool,
                      bounds: DiscoverySettings) -> tuple[str, dict[str, Any]]:
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
            return url, parse_spec(response.content, bounds)
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


def _check_size(doc: Any, bounds: DiscoverySettings) -> None:
    for count, (_, depth) in enumerate(_walk(doc), start=1):
        if count > bounds.max_spec_nodes:
            raise SpecError(f"the spec has more than {bounds.max_spec_nodes} values "
                            "(YAML aliases counted where used)")
        if depth > bounds.max_spec_depth:
            raise SpecError(f"the spec nests deeper than {bounds.max_spec_depth} levels")


def parse_spec(raw: bytes, bounds: DiscoverySettings) -> dict[str, Any]:
    """JSON or YAML into a checked OpenAPI 3.0/3.1 document."""
    try:
        text = raw.decode("utf-8-sig")
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise SpecError(f"the spec is neither JSON nor YAML: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise SpecError("the spec is not a JSON/YAML object")
    if "swagger" in doc:
        raise SpecError(f"Swagger {doc['swagger']} is not supported; OpenAPI 3.0 or 3.1 only")
    version = str(doc.get("openapi", ""))
    if not version.startswith(("3.0", "3.1")):
        raise SpecError(f"not an OpenAPI 3.0/3.1 document (openapi: {version or 'missing'})")
    _check_size(doc, bounds)
    if not isinstance(doc.get("paths", {}), dict):
        raise SpecError("'paths' is not an object")
    return doc


def spec_hash(doc: dict[str, Any]) -> str:
    """Of the content, not the bytes: the same spec as JSON or YAML hashes the same."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- $ref resolution --------------------------------------------------------------

class Resolver:
    """Inlines local `$ref`s. A reference back into its own chain is cut and marked
    (a recursive schema stays finite), nesting beyond `max_depth` is cut, and the total
    of inlined values is capped so that references cannot expand exponentially."""

    def __init__(self, doc: dict[str, Any], max_depth: int, budget: int) -> None:
        self.doc = doc
        self.max_depth = max_depth
        self.budget = budget
        self.warnings: set[str] = set()

    def _target(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise KeyError(ref)
        return node

    def resolve(self, node: Any, chain: tuple[str, ...] = (), depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise SpecError("the spec's schemas expand beyond the limit once $refs are "
                            "inlined")
        if depth > self.max_depth:
            self.warnings.add(f"schemas nested deeper than {self.max_depth} levels were cut")
            return {"description": "(nested too deep; cut)"}
        if isinstance(node, list):
            return [self.resolve(item, chain, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return {key: self.resolve(value, chain, depth + 1) for key, value in node.items()}
        if ref in chain:
            return {"description": f"(recursive: {ref})"}
        if not ref.startswith("#/"):
            self.warnings.add(f"external $ref {ref} not followed")
            return {"description": f"(external: {ref})"}
        try:
            target = self._target(ref)
        except KeyError:
            self.warnings.add(f"$ref {ref} points nowhere")
            return {"description": f"(unresolved: {ref})"}
        resolved = self.resolve(target, (*chain, ref), depth + 1)
        siblings = {k: self.resolve(v, chain, depth + 1) for k, v in node.items() if k != "$ref"}
        return {**resolved, **siblings} if isinstance(resolved, dict) else resolved


# --- capability analysis ----------------------------------------------------------

def _api_prefix(doc: dict[str, Any]) -> str:
    """The path part of the first server URL, its variables at their defaults."""
    servers = doc.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url = str(servers[0].get("url", ""))
    variables = servers[0].get("variables") or {}
    for name, var in variables.items() if isinstance(variables, dict) else ():
        if isinstance(var, dict):
            url = url.replace("{" + str(name) + "}", str(var.get("default", "")))
    return urlparse(url).path.rstrip("/")


def _media_schema(content: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(content, dict) or not content:
        return None
    kind = next((t for t in BODY_TYPES if t in content), next(iter(content)))
    media = content[kind]
    schema = media.get("schema", {}) if isinstance(media, dict) else {}
    return str(kind), schema if isinstance(schema, dict) else {}


def _scopes(op: dict[str, Any], default: Any) -> list[str]:
    requirements = op.get("security", default)
    scopes = [str(s) for s in op.get("x-required-scopes", []) or []]
    for requirement in requirements if isinstance(requirements, list) else ():
        for values in requirement.values() if isinstance(requirement, dict) else ():
            scopes.extend(str(v) for v in values or [] if v not in scopes)
    return scopes


def _parameters(raw: list[Any]) -> list[Parameter]:
    params: dict[tuple[str, str], Parameter] = {}
    for p in raw:
        if not isinstance(p, dict) or "name" not in p or "in" not in p:
            continue
        schema = p.get("schema")
        if not isinstance(schema, dict):
            media = _media_schema(p.get("content"))
            schema = media[1] if media else {}
        try:
            param = Parameter(name=str(p["name"]), location=p["in"],
                              required=bool(p.get("required", False)),
                              description=str(p.get("description", "")), schema=schema)
        except ValidationError:
            continue
        params[(param.location, param.name)] = param  # an operation's own overrides the path's
    return list(params.values())


def _operation(resolver: Resolver, path: str, method: str, op: dict[str, Any],
               shared: list[Any], security: Any, ids: set[str]) -> Operation:
    op = resolver.resolve(op)
    base_id = str(op.get("operationId") or f"{method}_{_SLUG.sub('_', path).strip('_')}")[:190]
    operation_id, n = base_id, 1
    while operation_id in ids:
        n += 1
        operation_id = f"{base_id}_{n}"
    ids.add(operation_id)
    body = op.get("requestBody")
    request_body = None
    if isinstance(body, dict):
        media = _media_schema(body.get("content"))
        content_type, schema = media if media else ("application/json", {})
        request_body = RequestBody(content_type=content_type,
                                   required=bool(body.get("required", False)),
                                   description=str(body.get("description", "")), schema=schema)
    responses: dict[str, dict[str, Any]] = {}
    for code, answer in (op.get("responses") or {}).items():
        if isinstance(answer, dict):
            entry: dict[str, Any] = {"description": str(answer.get("description", ""))}
            media = _media_schema(answer.get("content"))
            if media and str(code).startswith("2"):
                entry["content_type"], entry["schema"] = media
            responses[str(code)] = entry
    tags = op.get("tags") or ["default"]
    segments = [s for s in path.split("/") if s and not s.startswith("{")]
    return Operation(
        operation_id=operation_id, method=method, path=path,
        summary=str(op.get("summary", ""))[:500],
        description=str(op.get("description", ""))[:2000], tag=str(tags[0]),
        resource=segments[0] if segments else "", deprecated=bool(op.get("deprecated")),
        parameters=_parameters(resolver.resolve(shared) + list(op.get("parameters") or [])),
        request_body=request_body, responses=responses,
        scopes=_scopes(op, security))


def analyse(spec_url: str, doc: dict[str, Any], bounds: DiscoverySettings) -> Analysis:
    """Every operation with its `$ref`s inlined, grouped later by tag and resource."""
    paths: dict[str, Any] = doc.get("paths") or {}
    resolver = Resolver(doc, bounds.max_ref_depth, bounds.max_expanded_nodes)
    items = [(path, resolver.resolve(item) if isinstance(item, dict) and "$ref" in item
              else item) for path, item in paths.items()]
    found = [(path, item, m) for path, item in items if isinstance(item, dict)
             for m in METHODS if isinstance(item.get(m), dict)]
    if len(found) > bounds.max_operations:
        raise SpecError(f"the spec has {len(found)} operations; the limit is "
                        f"{bounds.max_operations}")
    ids: set[str] = set()
    security = doc.get("security")
    try:
        operations = [
            _operation(resolver, str(path), method, item[method],
                       list(item.get("parameters") or []), security, ids)
            for path, item, method in found]
    except (ValidationError, TypeError, AttributeError) as exc:
        raise SpecError(f"the spec has an invalid operation: {str(exc)[:300]}") from None
    info = doc["info"] if isinstance(doc.get("info"), dict) else {}
    return Analysis(
        spec_url=spec_url, spec_hash=spec_hash(doc), title=str(info.get("title", ""))[:500],
        version=str(info.get("version", ""))[:100],
        openapi_version=str(doc.get("openapi"))[:20], api_prefix=_api_prefix(doc),
        operations=operations, warnings=sorted(resolver.warnings))
