"""Swagger 2.0 into OpenAPI 3.0, so every later step reads one shape of spec."""

from __future__ import annotations

from typing import Any

_SCHEMA_KEYS = ("type", "format", "items", "enum", "default", "minimum", "maximum",
                "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
                "minItems", "maxItems", "uniqueItems", "multipleOf")
_REF_PREFIXES = (("#/definitions/", "#/components/schemas/"),
                 ("#/parameters/", "#/components/parameters/"),
                 ("#/responses/", "#/components/responses/"))
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# bandit B105: OAuth flow names, not passwords
_FLOWS = {"implicit": "implicit", "password": "password",  # nosec B105
          "application": "clientCredentials", "accessCode": "authorizationCode"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in _list(value) if isinstance(v, str)]


def _rewrite_refs(node: Any) -> Any:
    """Every `$ref` pointed at its OpenAPI 3 place, iteratively (specs nest deep)."""
    root: list[Any] = [node]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if isinstance(value, dict):
            value = dict(value)
            ref = value.get("$ref")
            if isinstance(ref, str):
                for old, new in _REF_PREFIXES:
                    if ref.startswith(old):
                        value["$ref"] = new + ref[len(old):]
            parent[key] = value
            stack.extend((value, k) for k in value)
        elif isinstance(value, list):
            value = list(value)
            parent[key] = value
            stack.extend((value, i) for i in range(len(value)))
    return root[0]


def _schema_of(param: dict[str, Any]) -> dict[str, Any]:
    """A non-body parameter's inline type facts as a schema (`file` is binary)."""
    schema = {k: param[k] for k in _SCHEMA_KEYS if k in param}
    if schema.get("type") == "file":
        schema = {"type": "string", "format": "binary"}
    return schema


def _param(param: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        return param
    out: dict[str, Any] = {k: param[k] for k in ("name", "in", "description", "required",
                                                 "deprecated", "allowEmptyValue")
                           if k in param}
    out["schema"] = _schema_of(param)
    if param.get("collectionFormat") == "multi":
        out["explode"] = True
    return out


def _body(params: list[Any], consumes: list[str],
          shared: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """The parameters without `body`/`formData`, and those two as a requestBody."""
    kept: list[Any] = []
    body: dict[str, Any] | None = None
    form: dict[str, Any] = {}
    form_required: list[str] = []
    for raw in params:
        param = raw
        if isinstance(raw, dict) and isinstance(raw.get("$ref"), str):
            param = shared.get(raw["$ref"].rsplit("/", 1)[-1], raw)
        if not isinstance(param, dict):
            continue
        where = param.get("in")
        if where == "body":
            media = {"schema": param.get("schema") or {}}
            body = {"content": {t: media for t in consumes or ["application/json"]},
                    "required": bool(param.get("required"))}
            if param.get("description"):
                body["description"] = param["description"]
        elif where == "formData":
            form[str(param.get("name"))] = {
                **_schema_of(param), **({"description": param["description"]}
                                        if "description" in param else {})}
            if param.get("required"):
                form_required.append(str(param.get("name")))
        else:
            kept.append(_param(param) if param is raw else raw)
    if form:
        schema: dict[str, Any] = {"type": "object", "properties": form}
        if form_required:
            schema["required"] = form_required
        kinds = [t for t in consumes if t in _FORM_TYPES] or [
            "multipart/form-data" if any(p.get("format") == "binary" for p in form.values())
            else "application/x-www-form-urlencoded"]
        body = {"content": {t: {"schema": schema} for t in kinds},
                "required": bool(form_required)}
    return kept, body


def _response(answer: Any, produces: list[str]) -> Any:
    if not isinstance(answer, dict) or "$ref" in answer:
        return answer
    out: dict[str, Any] = {"description": str(answer.get("description", ""))}
    if isinstance(answer.get("schema"), dict):
        schema = answer["schema"]  # a file download is binary in OpenAPI 3
        media: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}
                                 if schema.get("type") == "file" else schema}
        examples = answer.get("examples")
        types = produces or ["application/json"]
        out["content"] = {t: dict(media) for t in types}
        if isinstance(examples, dict):
            for kind, value in examples.items():
                if kind in out["content"]:
                    out["content"][kind]["example"] = value
    if isinstance(answer.get("headers"), dict):
        out["headers"] = {name: {"description": h.get("description", ""),
                                 "schema": _schema_of(h)}
                          for name, h in answer["headers"].items() if isinstance(h, dict)}
    return out


def _scheme(definition: Any) -> Any:
    if not isinstance(definition, dict):
        return definition
    kind = definition.get("type")
    common = {"description": definition["description"]} if "description" in definition else {}
    if kind == "basic":
        return {"type": "http", "scheme": "basic", **common}
    if kind == "apiKey":
        return {"type": "apiKey", "name": definition.get("name", ""),
                "in": definition.get("in", "header"), **common}
    if kind == "oauth2":
        flow: dict[str, Any] = {"scopes": definition.get("scopes") or {}}
        for key in ("authorizationUrl", "tokenUrl"):
            if key in definition:
                flow[key] = definition[key]
        name = _FLOWS.get(str(definition.get("flow")), "implicit")
        return {"type": "oauth2", "flows": {name: flow}, **common}
    return definition


def _servers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    host = doc.get("host")
    base = str(doc.get("basePath") or "")
    if not host:
        return [{"url": base or "/"}]
    schemes = _strings(doc.get("schemes")) or ["https"]
    return [{"url": f"{scheme}://{host}{base}"} for scheme in schemes]


def _operation(op: dict[str, Any], shared_params: list[Any], doc: dict[str, Any],
               parameters: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The operation in OpenAPI 3 form, and the path's own parameters that stay."""
    consumes = _strings(op.get("consumes")) or _strings(doc.get("consumes"))
    produces = _strings(op.get("produces")) or _strings(doc.get("produces"))
    out = {k: v for k, v in op.items()
           if k not in ("parameters", "responses", "consumes", "produces", "schemes")}
    params, body = _body(_list(op.get("parameters")), consumes, parameters)
    path_params, path_body = _body(shared_params, consumes, parameters)
    if params:
        out["parameters"] = params
    if body or path_body:
        out["requestBody"] = body or path_body
    responses = op.get("responses")
    if isinstance(responses, dict):
        out["responses"] = {str(code): _response(answer, produces)
                            for code, answer in responses.items()}
    return out, path_params


def convert(doc: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.0.3 document saying what the Swagger 2.0 `doc` says."""
    parameters = doc.get("parameters") if isinstance(doc.get("parameters"), dict) else {}
    produces = _strings(doc.get("produces"))
    components: dict[str, Any] = {}
    if isinstance(doc.get("definitions"), dict):
        components["schemas"] = doc["definitions"]
    shared = {name: _param(p) for name, p in (parameters or {}).items()
              if isinstance(p, dict) and p.get("in") not in ("body", "formData")}
    if shared:
        components["parameters"] = shared
    if isinstance(doc.get("responses"), dict):
        components["responses"] = {name: _response(r, produces)
                                   for name, r in doc["responses"].items()}
    if isinstance(doc.get("securityDefinitions"), dict):
        components["securitySchemes"] = {name: _scheme(d) for name, d
                                         in doc["securityDefinitions"].items()}
    paths: dict[str, Any] = {}
    for path, item in (doc.get("paths") or {}).items() if isinstance(doc.get("paths"),
                                                                     dict) else ():
        if not isinstance(item, dict):
            continue
        shared_params = _list(item.get("parameters"))
        new_item: dict[str, Any] = {}
        for key, op in item.items():
            if key in METHODS and isinstance(op, dict):
                new_item[key], kept = _operation(op, shared_params, doc, parameters or {})
                if kept:
                    new_item["parameters"] = kept
            elif key != "parameters":
                new_item[key] = op
        paths[str(path)] = new_item
    out = {"openapi": "3.0.3", "info": doc.get("info") or {}, "servers": _servers(doc),
           "paths": paths, "components": components}
    for key in ("security", "tags", "externalDocs"):
        if key in doc:
            out[key] = doc[key]
    out.update({k: v for k, v in doc.items() if k.startswith("x-")})
    converted: dict[str, Any] = _rewrite_refs(out)
    return converted
