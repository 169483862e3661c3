"""What a spec states per operation, for a document's attributed claims: its operations
found by path shape, and each one's parameters, fields, statuses, enums and bounds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from llmdocs.claims.phrases import Bound, bounds_in, enum_values, tokenize
from llmdocs.openapi.fields import Facts, FieldInfo
from llmdocs.openapi.reference import OperationRef, Reference

# headers any request or answer may carry whatever the spec says: its media types imply them
_PROTOCOL_HEADERS = frozenset({"content-type", "accept", "content-length"})


def is_template(segment: str) -> bool:
    """A path segment that stands for a value: `{id}`, `:id` or `<id>`."""
    return (segment[:1], segment[-1:]) in (("{", "}"), ("<", ">")) or (
        segment.startswith(":") and len(segment) > 1)


def segments(path: str) -> list[str]:
    return [s for s in path.split("?", 1)[0].split("#", 1)[0].strip("/").split("/") if s]


def _names(fields: list[FieldInfo]) -> dict[str, Facts]:
    """Each field by its flattened name and by what a reader writes of it: without the
    leading `[].` of an array body, its leaf name, each parent."""
    out: dict[str, Facts] = {}
    for info in fields:
        name = info.name.removeprefix("[].")
        parts = name.replace("[]", "").split(".")
        for key in (info.name, name, parts[-1], *(".".join(parts[:i]) for i in range(
                1, len(parts)))):
            out.setdefault(key, info)
    return out


def _server_path(url: str) -> list[str]:
    """A server URL's base path: `https://host/v1` → [`v1`]; a relative URL is one."""
    return segments(url.split("://", 1)[1].partition("/")[2]) if "://" in url \
        else segments(url)


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@dataclass
class Target:
    """Where an attributed claim is judged: an operation's or a shared schema's names."""

    key: str  # "GET /users", or the schema's name
    params: dict[str, Facts] = field(default_factory=dict)
    fields: dict[str, Facts] = field(default_factory=dict)
    headers: set[str] = field(default_factory=set)  # lower case
    statuses: set[str] = field(default_factory=set)
    own: list[Facts] = field(default_factory=list)  # a schema's own, when not an object
    texts: list[str] = field(default_factory=list)  # its summary and description

    def facts(self, name: str) -> Facts | None:
        return self.params.get(name) or self.fields.get(name)

    def everything(self) -> list[Facts]:
        return [*self.params.values(), *self.fields.values(), *self.own]


def _operation_target(op: OperationRef, auth_headers: set[str]) -> Target:
    bodies = [op.request_body, *(r.body for r in op.responses)]
    return Target(
        key=f"{op.method.upper()} {op.path}",
        params={p.name: p for p in op.parameters},
        fields=_names([f for body in bodies if body is not None for f in body.fields]),
        headers={p.name.lower() for p in op.parameters if p.location == "header"}
        | {h.name.lower() for r in op.responses for h in r.headers} | auth_headers
        | _PROTOCOL_HEADERS,
        statuses={r.status.upper() for r in op.responses},
        texts=[op.summary, op.description])


class SpecIndex:
    """A reference's operations by method and path shape, and what each one states."""

    def __init__(self, reference: Reference) -> None:
        auth = {h.lower() for s in reference.security_schemes
                for h in (s.how.split("`")[1:2] if s.type == "apiKey" else ["Authorization"])
                if s.type in ("apiKey", "http", "oauth2", "openIdConnect")}
        self.operations = [(op, _operation_target(op, auth)) for op in reference.operations]
        # by method, segment count and first segment ("{}" for a parameter): each
        # template's literal segments by position
        self._by_shape: dict[tuple[str, int, str], list[tuple[list[tuple[int, str]],
                                                              Target]]] = {}
        for op, target in self.operations:
            parts = segments(op.path)
            literals = [(i, part) for i, part in enumerate(parts) if not is_template(part)]
            first = "{}" if not parts or is_template(parts[0]) else parts[0]
            self._by_shape.setdefault((op.method.upper(), len(parts), first), []).append(
                (literals, target))
        self._bases = sorted({tuple(_server_path(s.url)) for s in reference.servers}
                             - {()}, key=len, reverse=True)
        self.schemas = {s.name: Target(key=s.name, fields=_names(s.fields), own=[s.facts],
                                       texts=[s.description])
                        for s in reference.schemas}
        self.anywhere = Target(key="", headers=set().union(*(t.headers for _, t in
                                                              self.operations)) | auth)
        for target in [t for _, t in self.operations] + list(self.schemas.values()):
            for name, facts in target.params.items():
                self.anywhere.params.setdefault(name, facts)
            for name, facts in target.fields.items():
                self.anywhere.fields.setdefault(name, facts)
            self.anywhere.statuses |= target.statuses
        self.anywhere.params.update(_server_variables(reference))
        self._found: dict[tuple[str, str], Target | None] = {}

    def operation(self, method: str, path: str) -> Target | None:
        """The operation a `METHOD /path` names, its path compared by shape: a
        parameter's name is not part of the request, so `/users/{id}` is the spec's
        `/users/{user_id}`, and `/users/42` a call of it; a literal segment must match."""
        key = (method, path)
        if key not in self._found:
            if len(self._found) > 100_000:
                self._found.clear()  # a hostile text's distinct paths stay bounded
            parts = segments(path)
            self._found[key] = self._match(method, parts) or next(
                (found for base in self._bases if tuple(parts[:len(base)]) == base
                 and (found := self._match(method, parts[len(base):]))), None)
        return self._found[key]

    def _match(self, method: str, parts: list[str]) -> Target | None:
        """The operation whose literal segments the path has, the most literal first."""
        best: tuple[int, Target] | None = None
        for first in ((parts[0], "{}") if parts else ("{}",)):
            for literals, target in self._by_shape.get((method, len(parts), first), []):
                if all(parts[i] == literal for i, literal in literals) and (
                        best is None or len(literals) > best[0]):
                    best = (len(literals), target)
        return best[1] if best else None

    # --- judging ----------------------------------------------------------------------

    @staticmethod
    def has_name(target: Target, name: str, kind: str) -> bool:
        """A parameter or field of the target; a body field called a parameter (as
        many documents do) counts, and a header by its case-insensitive name."""
        if kind == "header":
            return name.lower() in target.headers or name in target.params
        return target.facts(name) is not None or (
            kind == "parameter" and name.lower() in target.headers)

    @staticmethod
    def has_status(target: Target, status: str) -> bool:
        return status in target.statuses or f"{status[0]}XX" in target.statuses

    @staticmethod
    def has_value(target: Target, name: str, value: str) -> bool:
        """An enum value of the named parameter or field (any of the target's when the
        text names none), or a value its description lists in words."""
        facts = target.facts(name) if name else None
        pool = [facts] if facts is not None else ([] if name else target.everything())
        return any(value in {_value_text(v) for v in f.enum} or value.lower() in _words(
            f.description) for f in pool) or (not name and any(
                value.lower() in _words(text) for text in target.texts))

    @staticmethod
    def has_bound(target: Target, name: str, bound: Bound) -> bool:
        """A bound the named parameter or field states (any of the target's when the text
        names none), by its schema or in its description's words."""
        facts = target.facts(name) if name else None
        pool = [facts] if facts is not None else ([] if name else target.everything())
        texts = [f.description for f in pool] + ([] if name else target.texts)
        return any(bound.matches(_stated(f)) for f in pool) or any(
            bound.same(said) for text in texts for said in bounds_in(text))


@lru_cache(maxsize=4096)
def _words(text: str) -> frozenset[str]:
    """A spec description's words (read once per description)."""
    return frozenset(t.core.lower() for t in tokenize(text[:2000]))


def _server_variables(reference: Reference) -> dict[str, Facts]:
    """Each server variable's values, as the reference says them ("`scheme` is one of
    `https`, `http`, by default `https`")."""
    out: dict[str, Facts] = {}
    for server in reference.servers:
        for said in server.variables:
            tokens = tokenize(said)
            if tokens:
                out[tokens[0].core] = Facts(enum=[v for _, v in enum_values(tokens)])
    return out


def _stated(facts: Facts) -> dict[tuple[str, str], float | None]:
    """A schema's bounds as (side, unit) → value."""
    return {("min", "value"): facts.minimum, ("max", "value"): facts.maximum,
            ("min", "length"): facts.min_length, ("max", "length"): facts.max_length,
            ("min", "items"): facts.min_items, ("max", "items"): facts.max_items}
