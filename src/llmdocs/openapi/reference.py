"""The reference part of an API document, from the spec alone: every fact a developer
looks up (servers, auth, parameters with their constraints, bodies, responses, examples).
JSON-serialisable: a workflow keeps it in its checkpointed state."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from llmdocs.openapi.analyse import BODY_TYPES, METHODS
from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.examples import MAX_EXAMPLE_CHARS, Direction, Examples
from llmdocs.openapi.fields import TEXT_LIMIT, Facts, FieldInfo, Walker
from llmdocs.openapi.load import SpecError
from llmdocs.openapi.models import Operation

ExampleOrigin = Literal["spec", "generated", "none"]
_FLOW_URLS = ("authorizationUrl", "tokenUrl")


class Server(BaseModel):
    url: str  # its variables at their defaults
    description: str = ""
    template: str = ""  # the URL as the spec writes it, when it has variables
    # each variable in words: "`scheme` is one of `https`, `http`, by default `https`"
    variables: list[str] = Field(default_factory=list)


class SecurityScheme(BaseModel):
    name: str
    type: str  # apiKey | http | oauth2 | openIdConnect | mutualTLS
    how: str  # how to send it, in words: "header `X-API-Key`"
    description: str = ""
    scopes: dict[str, str] = Field(default_factory=dict)  # oauth2: scope → meaning


class Requirement(BaseModel):
    scheme: str
    scopes: list[str] = Field(default_factory=list)


class Param(Facts):
    name: str
    location: str  # path | query | header | cookie
    required: bool = False
    example: Any = None
    has_example: bool = False


class Header(Facts):
    name: str
    required: bool = False


class Example(BaseModel):
    origin: ExampleOrigin = "none"
    value: Any = None
    reason: str = ""  # why there is none


class Body(BaseModel):
    content_type: str = ""
    required: bool = False
    description: str = ""
    schema_name: str = ""  # its components/schemas entry, for the link
    type: str = ""  # "object", "array of User"
    fields: list[FieldInfo] = Field(default_factory=list)
    example: Example = Field(default_factory=Example)


class Response(BaseModel):
    status: str
    description: str = ""
    headers: list[Header] = Field(default_factory=list)
    body: Body | None = None


class OperationRef(BaseModel):
    operation_id: str
    method: str
    path: str
    tag: str = "default"
    summary: str = ""
    description: str = ""
    deprecated: bool = False
    parameters: list[Param] = Field(default_factory=list)
    request_body: Body | None = None
    responses: list[Response] = Field(default_factory=list)
    # alternatives, each a set of schemes sent together; [] = no authentication
    security: list[list[Requirement]] = Field(default_factory=list)
    examples_missing: list[str] = Field(default_factory=list)  # "request", "response 200"


class Tag(BaseModel):
    name: str
    description: str = ""


class NamedSchema(BaseModel):
    name: str
    type: str = ""
    description: str = ""
    fields: list[FieldInfo] = Field(default_factory=list)
    facts: Facts = Field(default_factory=Facts)


class Reference(BaseModel):
    title: str = ""
    version: str = ""
    description: str = ""
    servers: list[Server] = Field(default_factory=list)
    security_schemes: list[SecurityScheme] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    operations: list[OperationRef] = Field(default_factory=list)
    schemas: list[NamedSchema] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def _text(value: Any, limit: int = TEXT_LIMIT) -> str:
    return str(value or "")[:limit] if not isinstance(value, dict | list) else ""


def _variable(name: str, var: dict[str, Any]) -> str:
    """A server variable in words, its values as code."""
    values = var.get("enum") if isinstance(var.get("enum"), list) else []
    said = f"`{_text(name, 100)}` is " + (
        f"one of {', '.join(f'`{_text(v, 100)}`' for v in values[:20])}, by default "
        if values else "by default ") + f"`{_text(var.get('default'), 100)}`"
    described = _text(var.get("description"), 300).rstrip(".")
    return f"{said} ({described})" if described else said


def _servers(doc: dict[str, Any]) -> list[Server]:
    out: list[Server] = []
    for server in doc.get("servers") or [] if isinstance(doc.get("servers"), list) else []:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
        said: list[str] = []
        for name, var in list((variables or {}).items())[:20]:
            if isinstance(var, dict):
                url = url.replace("{" + str(name) + "}", str(var.get("default", "")))
                said.append(_variable(str(name), var))
        out.append(Server(url=url[:500], description=_text(server.get("description"), 500),
                          template=server["url"][:500] if said else "", variables=said))
    return out[:20]


def _how(scheme: dict[str, Any]) -> str:
    kind = scheme.get("type")
    if kind == "apiKey":
        where = {"header": "header", "query": "query parameter", "cookie": "cookie"}.get(
            str(scheme.get("in")), "header")
        return f"{where} `{_text(scheme.get('name'), 200)}`"
    if kind == "http":
        name = _text(scheme.get("scheme"), 50).lower()
        if name == "bearer":
            fmt = _text(scheme.get("bearerFormat"), 50)
            return f"`Authorization: Bearer <token>`{f' ({fmt})' if fmt else ''}"
        if name == "basic":
            return "`Authorization: Basic <credentials>` (user and password, base64-encoded)"
        return f"`Authorization: {name.title()} <credentials>`"
    if kind == "oauth2":
        flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
        urls = [f"{flow} ({', '.join(_text(f.get(k), 300) for k in _FLOW_URLS if f.get(k))})"
                for flow, f in (flows or {}).items() if isinstance(f, dict)]
        return ("OAuth 2.0 access token as `Authorization: Bearer <token>`"
                + (f"; flows: {'; '.join(urls)}" if urls else ""))
    if kind == "openIdConnect":
        return ("OpenID Connect token as `Authorization: Bearer <token>`; discovery at "
                f"{_text(scheme.get('openIdConnectUrl'), 300)}")
    if kind == "mutualTLS":
        return "a client TLS certificate"
    return "see the description"


def _schemes(doc: dict[str, Any]) -> list[SecurityScheme]:
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    raw = (components or {}).get("securitySchemes")
    out: list[SecurityScheme] = []
    for name, scheme in raw.items() if isinstance(raw, dict) else ():
        if not isinstance(scheme, dict):
            continue
        scopes: dict[str, str] = {}
        for flow in (scheme.get("flows") or {}).values() if isinstance(
                scheme.get("flows"), dict) else ():
            if isinstance(flow, dict) and isinstance(flow.get("scopes"), dict):
                scopes.update({str(k): _text(v, 300) for k, v in flow["scopes"].items()})
        out.append(SecurityScheme(name=str(name)[:200], type=_text(scheme.get("type"), 50),
                                  how=_how(scheme), description=_text(
                                      scheme.get("description")), scopes=scopes))
    return out


def _security(requirements: Any) -> list[list[Requirement]]:
    if not isinstance(requirements, list):
        return []
    return [[Requirement(scheme=str(name)[:200], scopes=[
        str(s)[:200] for s in (scopes if isinstance(scopes, list) else [])])
             for name, scopes in alternative.items()]
            for alternative in requirements if isinstance(alternative, dict)]


class _Builder:
    """One spec's reference; the walker's budget bounds all the work together."""

    def __init__(self, doc: dict[str, Any], bounds: SpecBounds) -> None:
        self.doc = doc
        # a fifth of what inlining may expand to: a reference is kept in a run's state
        self.walker = Walker(doc, bounds.max_ref_depth, bounds.max_expanded_nodes // 5)
        self.examples = Examples(doc, self.walker)

    def deref(self, node: Any) -> dict[str, Any]:
        return self.walker.deref(node, ())[0] if isinstance(node, dict) else {}

    def param(self, raw: dict[str, Any]) -> Param:
        schema = raw.get("schema")
        if not isinstance(schema, dict) and isinstance(raw.get("content"), dict):
            media: Any = next(iter(raw["content"].values()), {})
            schema = media.get("schema") if isinstance(media, dict) else None
        facts = self.walker.facts(schema if isinstance(schema, dict) else {}, ())[0]
        facts.description = _text(raw.get("description")) or facts.description
        facts.deprecated = raw.get("deprecated") is True or facts.deprecated
        example = self.example(raw, schema, "request")
        return Param(name=_text(raw.get("name"), 200), location=_text(raw.get("in"), 20),
                     required=raw.get("required") is True,
                     example=example.value, has_example=example.origin != "none",
                     **facts.model_dump())

    def example(self, media: dict[str, Any], schema: Any, direction: Direction) -> Example:
        """The spec's example (media `example`, the first of `examples`, the schema's),
        else one made from the schema and checked against it."""
        found: list[Any] = []
        if "example" in media:
            found.append(media["example"])
        elif isinstance(media.get("examples"), dict):
            first = self.deref(next(iter(media["examples"].values()), None))
            if "value" in first:
                found.append(first["value"])
        elif isinstance(schema, dict) and "example" in self.deref(schema):
            found.append(self.deref(schema)["example"])
        if found:
            value = found[0]
            if len(json.dumps(value, default=str)) > MAX_EXAMPLE_CHARS:
                return Example(reason="the spec's example is too large to show")
            return Example(origin="spec", value=value)
        if not isinstance(schema, dict):
            return Example(reason="no schema")
        try:
            return Example(origin="generated", value=self.examples.make(schema, direction))
        except ValueError as exc:
            return Example(reason=str(exc))

    def body(self, raw: dict[str, Any], direction: Direction) -> Body | None:
        content = raw.get("content")
        if not isinstance(content, dict) or not content:
            return None
        kind = next((t for t in BODY_TYPES if t in content), next(iter(content)))
        media = content[kind] if isinstance(content[kind], dict) else {}
        schema = media.get("schema") if isinstance(media.get("schema"), dict) else None
        facts, merged, chain = self.walker.facts(schema or {}, ())
        fields = self.walker.fields(merged, chain) if schema else []
        return Body(content_type=str(kind)[:200], required=raw.get("required") is True,
                    description=_text(raw.get("description")) if direction == "request"
                    else "", schema_name=facts.schema_name,
                    type=facts.type, fields=fields,
                    example=self.example(media, schema, direction))

    def operation(self, path: str, method: str, op: dict[str, Any],
                  shared: list[Any], ids: set[str]) -> OperationRef:
        params: dict[tuple[str, str], Param] = {}
        own: list[Any] = op["parameters"] if isinstance(op.get("parameters"), list) else []
        for raw in [*shared, *own]:
            raw = self.deref(raw)
            if "name" in raw and "in" in raw:
                param = self.param(raw)
                params[(param.location, param.name)] = param  # the operation's own wins
        body_raw = self.deref(op.get("requestBody"))
        body = self.body(body_raw, "request") if body_raw else None
        responses: list[Response] = []
        answers = op.get("responses") if isinstance(op.get("responses"), dict) else {}
        for status, answer in (answers or {}).items():
            answer = self.deref(answer)
            raw_headers = answer.get("headers") if isinstance(answer.get("headers"),
                                                              dict) else {}
            headers = [Header(name=str(name)[:200], required=header.get("required") is True,
                              **self.header_facts(header).model_dump())
                       for name, header in ((name, self.deref(h))
                                            for name, h in (raw_headers or {}).items())]
            responses.append(Response(status=str(status)[:20],
                                      description=_text(answer.get("description")),
                                      headers=headers, body=self.body(answer, "response")))
        operation_id = _text(op.get("operationId"), 190) or f"{method}_{path}"
        while operation_id in ids:
            operation_id += "_"
        ids.add(operation_id)
        tags: list[Any] = op["tags"] if isinstance(op.get("tags"), list) and op["tags"] else [
            "default"]
        security = op["security"] if "security" in op else self.doc.get("security")
        ref = OperationRef(
            operation_id=operation_id, method=method, path=path[:2000], tag=str(tags[0]),
            summary=_text(op.get("summary"), 500), description=_text(op.get("description")),
            deprecated=op.get("deprecated") is True, parameters=list(params.values()),
            request_body=body, responses=responses, security=_security(security))
        ref.examples_missing = _missing(ref)
        return ref

    def header_facts(self, header: dict[str, Any]) -> Facts:
        facts = self.walker.facts(header.get("schema") or {}, ())[0]
        facts.description = _text(header.get("description")) or facts.description
        return facts

    def schemas(self) -> list[NamedSchema]:
        components = self.doc.get("components") if isinstance(
            self.doc.get("components"), dict) else {}
        raw = (components or {}).get("schemas")
        out: list[NamedSchema] = []
        for name, schema in raw.items() if isinstance(raw, dict) else ():
            ref = "#/components/schemas/" + str(name).replace("~", "~0").replace("/", "~1")
            facts, merged, chain = self.walker.facts(schema, (ref,))
            out.append(NamedSchema(name=str(name)[:200], type=facts.type,
                                   description=facts.description, facts=facts,
                                   fields=self.walker.fields(merged, chain)))
        return out


def _missing(op: OperationRef) -> list[str]:
    """The examples the reference cannot show: a request body's, and a success body's."""
    missing = ["request"] if op.request_body and op.request_body.example.origin == "none" \
        else []
    success = next((r for r in op.responses if r.status.startswith("2") and r.body), None)
    if success is not None and success.body and success.body.example.origin == "none":
        missing.append(f"response {success.status}")
    return missing


def build_reference(doc: dict[str, Any], bounds: SpecBounds) -> Reference:
    """The reference of a parsed spec (see `parse_spec`); a spec beyond the bounds is a
    `SpecError`, a schema beyond them is cut and said in `warnings`."""
    builder = _Builder(doc, bounds)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    items = [(str(path), builder.deref(item)) for path, item in (paths or {}).items()]
    found = [(path, item, method) for path, item in items
             for method in METHODS if isinstance(item.get(method), dict)]
    if len(found) > bounds.max_operations:
        raise SpecError(f"the spec has {len(found)} operations; the limit is "
                        f"{bounds.max_operations}")
    ids: set[str] = set()
    try:
        operations = [builder.operation(path, method, item[method], item["parameters"]
                                        if isinstance(item.get("parameters"), list) else [],
                                        ids) for path, item, method in found]
    except (ValidationError, TypeError, AttributeError) as exc:  # as `analyse` refuses it
        raise SpecError(f"the spec has an invalid operation: {str(exc)[:300]}") from None
    declared = [t for t in doc.get("tags") or [] if isinstance(t, dict) and "name" in t] \
        if isinstance(doc.get("tags"), list) else []
    described = {str(t["name"]): _text(t.get("description")) for t in declared}
    order = list(dict.fromkeys([*(str(t["name"]) for t in declared),
                                *(op.tag for op in operations)]))
    used = {op.tag for op in operations}
    tags = [Tag(name=name[:200], description=described.get(name, ""))
            for name in order if name in used]
    operations.sort(key=lambda op: order.index(op.tag))  # stable: the spec's order within
    schemas = builder.schemas()
    return Reference(
        title=_text((info or {}).get("title"), 500), version=_text((info or {}).get("version"),
                                                                   100),
        description=_text((info or {}).get("description"), 5000), servers=_servers(doc),
        security_schemes=_schemes(doc), tags=tags, operations=operations, schemas=schemas,
        warnings=sorted(builder.walker.warnings))


def reference_of_operations(title: str, version: str,
                            operations: list[Operation], bounds: SpecBounds) -> Reference:
    """A reduced reference from operations alone (a registered service's: their
    `$ref`s already inlined, no servers, schemes or shared schemas)."""
    paths: dict[str, Any] = {}
    for op in operations:
        responses = {code: {"description": r.get("description", ""), **(
            {"content": {r.get("content_type", "application/json"): {"schema": r["schema"]}}}
            if isinstance(r.get("schema"), dict) else {})} for code, r in op.responses.items()}
        raw: dict[str, Any] = {
            "operationId": op.operation_id, "tags": [op.tag], "summary": op.summary,
            "description": op.description, "deprecated": op.deprecated,
            "parameters": [{"name": p.name, "in": p.location, "required": p.required,
                            "description": p.description, "schema": p.schema_}
                           for p in op.parameters],
            "responses": responses}
        if op.request_body is not None:
            raw["requestBody"] = {
                "required": op.request_body.required,
                "description": op.request_body.description,
                "content": {op.request_body.content_type: {"schema": op.request_body.schema_}}}
        paths.setdefault(op.path, {})[op.method] = raw
    return build_reference({"openapi": "3.0.3", "info": {"title": title, "version": version},
                            "paths": paths}, bounds)
