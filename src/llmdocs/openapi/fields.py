"""A schema's facts and its fields flattened as `a.b[].c`, `$ref`s followed within bounds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from llmdocs.openapi.resolve import Resolver

SCHEMAS = "#/components/schemas/"
TEXT_LIMIT = 2000  # a description longer than this is cut: the spec is untrusted
ENUM_LIMIT = 100
FIELDS_PER_SCHEMA = 1000  # one body's or schema's flattened fields; more are cut


class Facts(BaseModel):
    """What a schema says of one value: its type and every constraint on it."""

    type: str = ""
    format: str = ""
    description: str = ""
    enum: list[Any] = Field(default_factory=list)
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str = ""
    min_items: int | None = None
    max_items: int | None = None
    nullable: bool = False
    read_only: bool = False
    write_only: bool = False
    deprecated: bool = False
    variants: list[str] = Field(default_factory=list)  # oneOf/anyOf, by name or type
    variant_kind: str = ""  # "one of" | "any of"
    schema_name: str = ""  # the components/schemas entry it is, for the link
    note: str = ""  # "recursive: see `User`", "nested too deep; cut"


class FieldInfo(Facts):
    name: str  # flattened: `a.b[].c`
    required: bool = False


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Walker:
    """Follows `$ref`s through a spec with a budget of schema nodes and a depth limit:
    a hostile spec is cut, and the cut is said in `warnings`."""

    def __init__(self, doc: dict[str, Any], max_depth: int, budget: int) -> None:
        self.resolver = Resolver(doc, max_depth, budget)
        self.max_depth = max_depth
        self.budget = budget
        self.warnings: set[str] = set()
        self._fields_left = FIELDS_PER_SCHEMA

    def spend(self) -> bool:
        self.budget -= 1
        if self.budget < 0:
            self.warnings.add("the spec's schemas exceed the reference's budget; cut")
        return self.budget >= 0

    def deref(self, schema: Any, chain: tuple[str, ...]
              ) -> tuple[dict[str, Any], str, tuple[str, ...], str]:
        """The schema behind `$ref`s: (schema, its components name, chain, why it was cut)."""
        name = ""
        for _ in range(self.max_depth):
            if not isinstance(schema, dict):
                return {}, name, chain, ""
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema, name, chain, ""
            short = ref[len(SCHEMAS):] if ref.startswith(SCHEMAS) else ref
            if ref in chain:
                return {}, short, chain, f"recursive: see `{short}`"
            if not ref.startswith("#/"):
                return {}, "", chain, f"external: {ref[:200]}"
            try:
                schema = self.resolver.target(ref)
            except KeyError:
                self.warnings.add(f"$ref {ref[:200]} points nowhere")
                return {}, "", chain, f"unresolved: {ref[:200]}"
            name = short if ref.startswith(SCHEMAS) else name
            chain = (*chain, ref)
        return {}, name, chain, "nested too deep; cut"

    def merged(self, schema: Any, chain: tuple[str, ...]
               ) -> tuple[dict[str, Any], str, tuple[str, ...], str]:
        """`deref`, with `allOf` parts merged in: properties joined, `required` united."""
        base, name, chain, cut = self.deref(schema, chain)
        parts = base.get("allOf")
        if cut or not isinstance(parts, list):
            return base, name, chain, cut
        out: dict[str, Any] = {k: v for k, v in base.items() if k != "allOf"}
        properties: dict[str, Any] = dict(out.get("properties") or {})
        required = list(out.get("required") or [])
        for part in parts[:50]:
            if not self.spend():
                break
            sub, _, _, sub_cut = self.merged(part, chain)
            if sub_cut:
                out.setdefault("description", sub_cut)
            for key, value in sub.items():
                if key == "properties" and isinstance(value, dict):
                    properties.update(value)
                elif key == "required" and isinstance(value, list):
                    required += [r for r in value if r not in required]
                else:
                    out.setdefault(key, value)
        if properties:
            out["properties"] = properties
        if required:
            out["required"] = required
        return out, name, chain, cut

    def type_text(self, schema: dict[str, Any], chain: tuple[str, ...], depth: int = 0) -> str:
        """`string`, `array of User`, `object`, `integer`: a type as a reader names it."""
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "")
        if kind == "array" or (not kind and "items" in schema):
            items, name, chain, cut = self.merged(schema.get("items"), chain)
            inner = name or ("any" if cut else self.type_text(items, chain, depth + 1)
                             if depth < 5 else "any")
            return f"array of {inner}"
        if kind:
            return str(kind)
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        return ""

    def facts(self, schema: Any, chain: tuple[str, ...]) -> tuple[Facts, dict[str, Any],
                                                                  tuple[str, ...]]:
        """The facts of one schema, the schema behind its `$ref`s and the chain there."""
        merged, name, chain, cut = self.merged(schema, chain)
        kind = merged.get("type")
        variants_of = next(((k, merged[k]) for k in ("oneOf", "anyOf")
                            if isinstance(merged.get(k), list)), None)
        variants: list[str] = []
        if variants_of is not None:
            for variant in variants_of[1][:20]:
                sub, sub_name, sub_chain, sub_cut = self.deref(variant, chain)
                variants.append(sub_name or self.type_text(sub, sub_chain) or sub_cut or "any")
        text = self.type_text(merged, chain) or (variants_of[0] if variants_of else "")
        minimum, maximum = _number(merged.get("minimum")), _number(merged.get("maximum"))
        exclusive_min, exclusive_max = merged.get("exclusiveMinimum"), merged.get(
            "exclusiveMaximum")
        if _number(exclusive_min) is not None:  # 3.1: the bound itself
            minimum, exclusive_min = _number(exclusive_min), True
        if _number(exclusive_max) is not None:
            maximum, exclusive_max = _number(exclusive_max), True
        enum: list[Any] = merged["enum"] if isinstance(merged.get("enum"), list) else []
        if not cut and text.startswith("array"):
            items, _, _, cut = self.deref(merged.get("items"), chain)
            if not enum and isinstance(items.get("enum"), list):
                enum = items["enum"]  # each item is one of them
        if "const" in merged:
            enum = [merged["const"]]
        facts = Facts(
            type=text, format=str(merged.get("format", ""))[:100],
            description=str(merged.get("description", "") or "")[:TEXT_LIMIT],
            enum=list(enum[:ENUM_LIMIT]), default=merged.get("default"),
            has_default="default" in merged, minimum=minimum, maximum=maximum,
            exclusive_minimum=exclusive_min is True, exclusive_maximum=exclusive_max is True,
            min_length=_count(merged.get("minLength")),
            max_length=_count(merged.get("maxLength")),
            pattern=str(merged.get("pattern", ""))[:500],
            min_items=_count(merged.get("minItems")), max_items=_count(merged.get("maxItems")),
            nullable=merged.get("nullable") is True or (isinstance(kind, list)
                                                       and "null" in kind),
            read_only=merged.get("readOnly") is True, write_only=merged.get("writeOnly") is True,
            deprecated=merged.get("deprecated") is True,
            variants=variants, variant_kind=variants_of[0].replace("Of", " of")
            if variants_of else "", schema_name=name, note=cut)
        return facts, merged, chain

    def fields(self, schema: Any, chain: tuple[str, ...] = ()) -> list[FieldInfo]:
        """Every field under `schema`, depth first in the spec's order: `a`, `a.b`,
        `a.b[].c`; a recursive or too deep one is listed with the reason it stops."""
        self._fields_left = FIELDS_PER_SCHEMA
        return self._fields(schema, chain, "", 0)

    def _fields(self, schema: Any, chain: tuple[str, ...], prefix: str,
                depth: int) -> list[FieldInfo]:
        merged, _, chain, cut = self.merged(schema, chain)
        if cut:
            return []
        if self.type_text(merged, chain).startswith("array"):
            items, _, item_chain, _ = self.merged(merged.get("items"), chain)
            return self._properties(items, item_chain, f"{prefix}[]", depth)
        return self._properties(merged, chain, prefix, depth)

    def _properties(self, schema: dict[str, Any], chain: tuple[str, ...], prefix: str,
                    depth: int) -> list[FieldInfo]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return []
        required: list[Any] = schema["required"] if isinstance(schema.get("required"),
                                                               list) else []
        out: list[FieldInfo] = []
        for key, sub in properties.items():
            self._fields_left -= 1
            if self._fields_left < 0:
                self.warnings.add(f"a schema has more than {FIELDS_PER_SCHEMA} fields; cut")
                break
            if not self.spend():
                break
            name = f"{prefix}.{key}" if prefix else str(key)
            facts, merged, sub_chain = self.facts(sub, chain)
            if depth >= self.max_depth:
                facts.note = "nested too deep; cut"
            out.append(FieldInfo(name=name[:500], required=key in required,
                                 **facts.model_dump()))
            if not facts.note:
                out += self._fields(merged, sub_chain, name, depth + 1)
        return out
