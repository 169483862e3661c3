"""An OpenAPI document into the operations a service offers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.load import SpecError, spec_hash
from llmdocs.openapi.models import Operation, Parameter, RequestBody
from llmdocs.openapi.resolve import Resolver

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
_SLUG = re.compile(r"[^A-Za-z0-9]+")


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


def analyse(spec_url: str, doc: dict[str, Any], bounds: SpecBounds) -> Analysis:
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
