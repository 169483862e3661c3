"""Examples: the spec's own where it has them, else made from the schema and checked
against it with jsonschema; one that cannot be made valid is not shown."""

from __future__ import annotations

import json
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]
from jsonschema import Draft4Validator, Draft202012Validator

from llmdocs.openapi.fields import Walker

Direction = Literal["request", "response"]
MAX_EXAMPLE_CHARS = 4000  # a larger example (the spec's or made) is not shown
MAX_EXAMPLE_NODES = 500  # values made for one example before giving up
_FORMATS = {"date": "2024-01-15", "date-time": "2024-01-15T09:30:00Z",
            "time": "09:30:00", "email": "user@example.com",
            "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "uri": "https://example.com",
            "url": "https://example.com", "hostname": "example.com", "ipv4": "192.0.2.1",
            "ipv6": "2001:db8::1", "byte": "ZXhhbXBsZQ==", "binary": "<binary data>",
            # bandit B105: an example value in docs
            "password": "correct-horse-battery", "int32": "1", "int64": "1"}  # nosec B105


class _Impossible(Exception):
    """No value can be made for this schema (a required recursion, a pattern, …)."""


class Examples:
    """Makes and checks examples for one spec; its components are converted to JSON
    Schema once, not once per example."""

    def __init__(self, doc: dict[str, Any], walker: Walker) -> None:
        self.walker = walker
        self.modern = str(doc.get("openapi", "")).startswith("3.1")
        components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
        self.components = {"components": _json_schema(components, self.modern)}
        self._left = MAX_EXAMPLE_NODES

    def make(self, schema: Any, direction: Direction) -> Any:
        """A value valid against `schema`, or raises `ValueError` saying why there is none."""
        self._left = MAX_EXAMPLE_NODES
        try:
            value = self._value(schema, direction, (), 0)
        except _Impossible as exc:
            raise ValueError(str(exc)) from None
        except (OverflowError, TypeError, ValueError):  # `minimum: 1e999`, `minItems: "x"`
            raise ValueError("the schema's bounds are not numbers") from None
        if len(json.dumps(value, default=str)) > MAX_EXAMPLE_CHARS:
            raise ValueError("the example would be too large")
        self.check(schema, value, direction)
        return value

    def check(self, schema: Any, value: Any, direction: Direction) -> None:
        """Raises `ValueError` when `value` does not satisfy `schema` (patterns aside:
        a spec's regular expression is not run, it may be made to never finish)."""
        if not isinstance(schema, dict):
            return
        validator = (Draft202012Validator if self.modern else Draft4Validator)
        try:
            root = {**_json_schema(schema, self.modern, direction), **self.components}
            error = jsonschema.exceptions.best_match(validator(
                root, format_checker=validator.FORMAT_CHECKER).iter_errors(value))
        # an invalid schema, a $ref it cannot follow (referencing's errors, whose classes
        # move between versions), a value it cannot compare
        except Exception as exc:
            raise ValueError(f"the schema cannot be checked: {type(exc).__name__}") from None
        if error is not None:
            raise ValueError(f"not valid: {error.message[:200]}")

    def _value(self, schema: Any, direction: Direction, chain: tuple[str, ...],
               depth: int) -> Any:
        self._left -= 1
        if self._left < 0 or not self.walker.spend() or depth > 12:
            raise _Impossible("the schema is too large or deep for an example")
        merged, _, chain, cut = self.walker.merged(schema, chain)
        if cut:
            raise _Impossible(cut)
        for key in ("example", "const", "default"):
            if key in merged:
                return merged[key]
        if isinstance(merged.get("enum"), list) and merged["enum"]:
            return merged["enum"][0]
        for key in ("oneOf", "anyOf"):
            if isinstance(merged.get(key), list):
                base = {k: v for k, v in merged.items() if k not in ("oneOf", "anyOf")}
                for variant in merged[key][:10]:
                    try:
                        return self._value(_narrowed(base, variant, merged[key]), direction,
                                           chain, depth + 1)
                    except _Impossible:
                        continue
                raise _Impossible(f"no variant of {key} can be made")
        kind = merged.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (not kind and "properties" in merged):
            return self._object(merged, direction, chain, depth)
        if kind == "array" or (not kind and "items" in merged):
            return self._array(merged, direction, chain, depth)
        if kind in ("integer", "number"):
            return _number(merged, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(merged)

    def _object(self, schema: dict[str, Any], direction: Direction, chain: tuple[str, ...],
                depth: int) -> dict[str, Any]:
        required: list[Any] = schema["required"] if isinstance(schema.get("required"),
                                                                  list) else []
        skip = "readOnly" if direction == "request" else "writeOnly"
        out: dict[str, Any] = {}
        properties = schema.get("properties")
        for key, sub in (properties.items() if isinstance(properties, dict) else ()):
            facts = self.walker.deref(sub, chain)[0]
            if facts.get(skip) is True or (isinstance(sub, dict) and sub.get(skip) is True):
                continue
            try:
                out[str(key)] = self._value(sub, direction, chain, depth + 1)
            except _Impossible:
                if key in required:
                    raise
        return out

    def _array(self, schema: dict[str, Any], direction: Direction, chain: tuple[str, ...],
               depth: int) -> list[Any]:
        wanted = max(int(schema.get("minItems") or 0), 1)
        if schema.get("maxItems") == 0:
            return []
        if wanted > 20:
            raise _Impossible("the array needs too many items for an example")
        try:
            item = self._value(schema.get("items", {}), direction, chain, depth + 1)
        except _Impossible:
            if int(schema.get("minItems") or 0) == 0:
                return []
            raise
        if schema.get("uniqueItems") is True and wanted > 1:
            raise _Impossible("the array needs distinct items")
        return [item] * wanted


def _narrowed(base: dict[str, Any], variant: Any, variants: list[Any]) -> Any:
    """A variant that only adds constraints (`required: [title, category]`) applies to
    the schema around it, without the fields only its siblings require (else the value
    would match them all, and `oneOf` wants one); a variant with a type stands alone."""
    if not isinstance(variant, dict) or "$ref" in variant or "type" in variant \
            or not ("type" in base or "properties" in base):
        return variant
    required = list(dict.fromkeys([*base.get("required", []), *variant.get("required", [])]))
    theirs = {name for other in variants if isinstance(other, dict) and other is not variant
              for name in other.get("required", []) if isinstance(name, str)} - set(required)
    properties = base.get("properties")
    return {**base, **variant, "required": required,
            **({"properties": {k: v for k, v in properties.items() if k not in theirs}}
               if isinstance(properties, dict) else {})}


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get(
        "exclusiveMaximum")
    step = 1 if integer else 0.5
    if isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        low, exclusive_low = exclusive_low, True
    if isinstance(exclusive_high, int | float) and not isinstance(exclusive_high, bool):
        high, exclusive_high = exclusive_high, True
    value: float = 1 if integer else 1.5
    if isinstance(low, int | float) and value <= low:
        value = low + step if exclusive_low is True else low
    if isinstance(high, int | float) and value >= high:
        value = high - step if exclusive_high is True else high
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and multiple > 0:
        value = multiple * -(-value // multiple)
    return int(value) if integer else float(value)


def _string(schema: dict[str, Any]) -> str:
    if schema.get("pattern"):
        raise _Impossible("a value matching the pattern cannot be made")
    fmt = str(schema.get("format", ""))
    value = _FORMATS.get(fmt, "string")
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        if fmt in _FORMATS or low > 1000:
            raise _Impossible("the string's length bounds cannot be met")
        value = value + "x" * (low - len(value))
    if isinstance(high, int) and len(value) > high:
        if fmt in _FORMATS:
            raise _Impossible("the string's length bounds cannot be met")
        value = value[:high]
    return value


def _json_schema(schema: Any, modern: bool, direction: Direction | None = None) -> Any:
    """An OpenAPI schema as JSON Schema: `nullable` as a null type, patterns dropped
    (see `check`) and, for a request (response), required readOnly (writeOnly)
    properties no longer required. Iterative: a spec may nest deep."""
    root: list[Any] = [schema]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    skip = {"request": "readOnly", "response": "writeOnly"}.get(direction or "")
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if isinstance(value, list):
            value = list(value)
            stack.extend((value, i) for i in range(len(value)))
        elif isinstance(value, dict):
            value = {k: v for k, v in value.items() if not (k == "pattern"
                                                            and isinstance(v, str))}
            if not modern and value.get("nullable") is True:
                kind = value.get("type")
                if isinstance(kind, str):
                    value["type"] = [kind, "null"]
                if isinstance(value.get("enum"), list):
                    value["enum"] = [*value["enum"], None]
            properties = value.get("properties")
            if skip and isinstance(properties, dict) and isinstance(value.get("required"),
                                                                    list):
                value["required"] = [r for r in value["required"]
                                     if not (isinstance(r, str)
                                             and isinstance(properties.get(r), dict)
                                             and properties[r].get(skip) is True)]
            stack.extend((value, k) for k in value if k not in ("example", "examples",
                                                                  "default", "enum", "const"))
        parent[key] = value
    return root[0]
