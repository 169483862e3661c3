"""Two schemas compared, `$ref`s followed: each pair of shared schemas once (memoised by
their pointers), a recursive schema cut where the pair comes back on its own chain."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from llmdocs.openapi.diff.changes import Side, pointer
from llmdocs.openapi.load import SpecError
from llmdocs.openapi.resolve import Resolver

MAX_NESTING = 100  # schemas (and the $refs between them) nested deeper are refused
_NO_CUT = 1 << 30
_MAX = ("maximum", "maxLength", "maxItems", "maxProperties")
_MIN = ("minimum", "minLength", "minItems", "minProperties")
# the kind a schema change has on each side; enum and description kinds are shared
_KINDS: dict[Side, dict[str, str]] = {
    "parameter": {"type": "parameter.type", "constraint": "parameter.constraint",
                  "default": "parameter.default"},
    "request": {"type": "request.field_type", "constraint": "request.constraint",
                "default": "request.default"},
    "response": {"type": "response.field_type", "constraint": "response.constraint"},
}


@dataclass(frozen=True)
class Found:
    """A change inside a schema; `path` is the field (`a.b[].c`) from where it was seen."""

    kind: str
    location: str
    path: str
    breaking: bool
    what: str  # said after the field: "was removed", "maxLength changed from 5 to 3"
    before: Any = None
    after: Any = None


@dataclass
class _View:
    """A schema with its `allOf` parts merged: the keywords (the first one wins), the
    properties with where each is written, and the required names."""

    pointer: str
    keys: dict[str, Any] = field(default_factory=dict)
    props: dict[str, tuple[Any, str]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)


def canonical(value: Any) -> str:
    """One text per value whatever its keys' order; what JSON cannot hold, by `repr`."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types, or a date as a key
        return repr(value)


def shown(value: Any) -> str:
    """A value as a reader sees it in a message."""
    return "unset" if value is None else canonical(value)[:200]


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix or path.startswith("[]"):
        return prefix + path
    return f"{prefix}.{path}"


def _types(keys: dict[str, Any]) -> tuple[frozenset[str], bool]:
    """The schema's types without null, and whether null is allowed (3.0 and 3.1)."""
    raw = keys.get("type")
    kinds = {str(t) for t in raw} if isinstance(raw, list) else {str(raw)} if raw else set()
    nullable = keys.get("nullable") is True or "null" in kinds
    kinds.discard("null")
    if not kinds and "properties" in keys:
        kinds.add("object")
    if not kinds and "items" in keys:
        kinds.add("array")
    return frozenset(kinds), nullable


def _narrows(key: str, before: Any, after: Any) -> bool:
    """Whether changing `key` from `before` to `after` allows fewer values."""
    if key in _MAX or (key == "exclusiveMaximum" and not isinstance(after, bool)):
        return after is not None and (before is None or after < before)
    if key in _MIN or (key == "exclusiveMinimum" and not isinstance(after, bool)):
        return after is not None and (before is None or after > before)
    return after not in (None, False)  # pattern, multipleOf, uniqueItems, a boolean bound


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


class Schemas:
    """Compares schemas of two specs; its memo serves every operation that shares them."""

    def __init__(self, base: Resolver, head: Resolver, budget: int) -> None:
        self.base, self.head = base, head
        self.budget = budget
        self.memo: dict[tuple[str, str, Side], list[Found]] = {}
        self.chain: dict[tuple[str, str], int] = {}

    def compare(self, before: Any, before_at: str, after: Any, after_at: str,
                side: Side) -> list[Found]:
        """The changes from `before` to `after`, each found once."""
        return self._compare(before, before_at, after, after_at, side)[0]

    @staticmethod
    def view(resolver: Resolver, schema: Any, at: str) -> _View:
        """`schema` (a value, not a `$ref`) with its `allOf` parts merged in."""
        out = _View(pointer=at)
        pending: list[tuple[Any, str]] = [(schema, at)]
        seen: set[str] = set()
        while pending:
            node, where = pending.pop(0)
            node, where = resolver.follow(node, where)
            if where in seen or not isinstance(node, dict):
                continue
            seen.add(where)
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    for name, sub in value.items():
                        out.props.setdefault(str(name), (
                            sub, f"{where}/properties{pointer(str(name))}"))
                elif key == "required" and isinstance(value, list):
                    out.required.update(str(r) for r in value)
                elif key == "allOf" and isinstance(value, list):
                    pending += [(part, f"{where}/allOf/{i}") for i, part in enumerate(value)]
                else:
                    out.keys.setdefault(key, value)
        return out

    def _compare(self, before: Any, before_at: str, after: Any, after_at: str,
                 side: Side) -> tuple[list[Found], int]:
        self.budget -= 1
        if self.budget < 0:
            raise SpecError("the specs' schemas are too large to compare within the limit")
        (was, was_at), (now, now_at) = (self.base.follow(before, before_at),
                                        self.head.follow(after, after_at))
        pair = (was_at, now_at)
        if pair in self.chain:
            return [], self.chain[pair]  # recursive: compared further up this chain
        memo_key = (was_at, now_at, side)
        shared = was_at != before_at or now_at != after_at
        if shared and memo_key in self.memo:
            return self.memo[memo_key], _NO_CUT
        depth = len(self.chain)
        if depth >= MAX_NESTING:
            raise SpecError(f"the schemas nest deeper than {MAX_NESTING} levels")
        self.chain[pair] = depth
        try:
            found, cut = self._views(self.view(self.base, was, was_at),
                                     self.view(self.head, now, now_at), side)
        finally:
            del self.chain[pair]
        first: dict[tuple[str, str, str], Found] = {}
        for f in found:  # a change reached by several paths is said by the first
            first.setdefault((f.kind, f.location, f.what), f)
        unique = list(first.values())
        if shared and cut >= depth:  # complete: no cut reached above this pair
            self.memo[memo_key] = unique
        return unique, cut

    def _views(self, b: _View, h: _View, side: Side) -> tuple[list[Found], int]:
        found = self._keywords(b, h, side)
        cut = _NO_CUT
        for sub_found, sub_cut in self._children(b, h, side):
            found += sub_found
            cut = min(cut, sub_cut)
        return found, cut

    def _keywords(self, b: _View, h: _View, side: Side) -> list[Found]:
        """What the schema itself says: description, type, nullability, values, bounds."""
        request = side != "response"
        kinds = _KINDS[side]
        out: list[Found] = []

        def add(role: str, key: str, breaking: bool, what: str, before: Any = None,
                after: Any = None) -> None:
            kind = kinds.get(role) or f"{'request' if request else 'response'}.{role}"
            where = f"{h.pointer}/{key}" if key in h.keys else f"{b.pointer}/{key}"
            out.append(Found(kind, where, "", breaking, what, before, after))

        bk, hk = b.keys, h.keys
        if bk.get("description") != hk.get("description"):
            out.append(Found("description.changed", f"{h.pointer}/description", "", False,
                             "changed its description", bk.get("description"),
                             hk.get("description")))
        (bt, bn), (ht, hn) = _types(bk), _types(hk)
        if bt != ht:
            before, after = "|".join(sorted(bt)) or "any", "|".join(sorted(ht)) or "any"
            widens = (before, after) == (("integer", "number") if request
                                         else ("number", "integer"))
            loosens = not ht if request else not bt  # any type accepted / a type promised
            add("type", "type", not (widens or loosens),
                f"changed type from {before} to {after}", before, after)
        if bk.get("format") != hk.get("format"):
            gone, new = "format" not in hk, "format" not in bk
            add("type", "format", not (gone if request else new),
                f"changed format from {shown(bk.get('format'))} to "
                f"{shown(hk.get('format'))}", bk.get("format"), hk.get("format"))
        if bn != hn:
            add("nullable", "nullable" if "nullable" in bk or "nullable" in hk else "type",
                bn if request else hn, "now accepts null" if hn else "no longer accepts null",
                bn, hn)
        out += self._enum(b, h, request, add)
        for key in (*_MAX, *_MIN, "exclusiveMaximum", "exclusiveMinimum", "multipleOf",
                    "pattern", "uniqueItems"):
            was, now = bk.get(key), hk.get(key)
            if was == now:
                continue
            if key == "pattern" and was is not None and now is not None:
                breaking = True  # neither includes the other, as far as we can tell
            else:
                narrows = _narrows(key, _number(was), _number(now)) if key != "pattern" \
                    else now is not None
                breaking = narrows if request else not narrows
            add("constraint", key, breaking, f"{key} changed from {shown(was)} to "
                f"{shown(now)}", was, now)
        if (bk.get("additionalProperties") is False) != (hk.get("additionalProperties") is False):
            closes = hk.get("additionalProperties") is False
            add("constraint", "additionalProperties", closes if request else not closes,
                "now refuses other fields" if closes else "now allows other fields",
                bk.get("additionalProperties"), hk.get("additionalProperties"))
        if request and bk.get("default") != hk.get("default"):
            add("default", "default", True, f"default changed from {shown(bk.get('default'))}"
                f" to {shown(hk.get('default'))}", bk.get("default"), hk.get("default"))
        return out

    @staticmethod
    def _enum(b: _View, h: _View, request: bool, add: Callable[..., None]) -> list[Found]:
        """Values added or removed one by one; a whole list set or dropped through `add`."""
        was, now = _values(b.keys), _values(h.keys)
        if was is None and now is None:
            return []
        if was is None or now is None:  # a set of values was set or dropped
            narrows = now is not None
            add("constraint", "enum" if "enum" in h.keys or "enum" in b.keys else "const",
                narrows if request else not narrows,
                "now allows only listed values" if narrows else "allows any value again",
                was, now)
            return []
        out: list[Found] = []
        keyed_now = {canonical(v): i for i, v in enumerate(now)}
        keyed_was = {canonical(v): i for i, v in enumerate(was)}
        for key, i in keyed_was.items():
            if key not in keyed_now:
                out.append(Found("enum.value_removed", f"{b.pointer}/enum/{i}", "", request,
                                 f"no longer allows {key[:200]}", was[i], None))
        for key, i in keyed_now.items():
            if key not in keyed_was:
                out.append(Found("enum.value_added", f"{h.pointer}/enum/{i}", "",
                                 not request, f"allows the new value {key[:200]}", None,
                                 now[i]))
        return out

    def _children(self, b: _View, h: _View, side: Side
                  ) -> list[tuple[list[Found], int]]:
        """Fields added, removed, made (not) required, then each field, the items and the
        variants compared in turn; each with the lowest chain depth its walk was cut at."""
        request = side != "response"
        prefix = "request" if request else "response"
        out: list[tuple[list[Found], int]] = []
        for name, (node, at) in b.props.items():
            if name not in h.props:
                breaking = not self._hidden(self.base, node, at, request)
                out.append(([Found(f"{prefix}.field_removed", at, name, breaking,
                                   "was removed", name, None)], _NO_CUT))
        for name, (node, at) in h.props.items():
            if name not in b.props:
                required = name in h.required and not self._hidden(self.head, node, at,
                                                                    request)
                out.append(([Found(f"{prefix}.field_added", at, name, request and required,
                                   "was added" + (" (required)" if required else ""),
                                   None, name)], _NO_CUT))
                continue
            was_node, was_at = b.props[name]
            if (name in b.required) != (name in h.required):
                made = name in h.required
                hidden = self._hidden(self.head, node, at, request)
                out.append(([Found(f"{prefix}.field_{'required' if made else 'optional'}",
                                   f"{h.pointer}/required", name,
                                   not hidden and made == request,
                                   "became required" if made else "became optional",
                                   not made, made)], _NO_CUT))
            found, cut = self._compare(was_node, was_at, node, at, side)
            out.append(([replace(f, path=_join(name, f.path)) for f in found], cut))
        for key, step in (("items", "[]"), ("additionalProperties", "*")):
            if isinstance(b.keys.get(key), dict) and isinstance(h.keys.get(key), dict):
                found, cut = self._compare(b.keys[key], f"{b.pointer}/{key}", h.keys[key],
                                           f"{h.pointer}/{key}", side)
                out.append(([replace(f, path=_join(step, f.path)) for f in found], cut))
        for key in ("oneOf", "anyOf"):
            was: list[Any] = b.keys[key] if isinstance(b.keys.get(key), list) else []
            now: list[Any] = h.keys[key] if isinstance(h.keys.get(key), list) else []
            pairs, gone, new = _variants(was, now)
            for i, j in pairs:
                out.append(self._compare(was[i], f"{b.pointer}/{key}/{i}", now[j],
                                         f"{h.pointer}/{key}/{j}", side))
            out += [([Found(f"{prefix}.variant_removed", f"{b.pointer}/{key}/{i}", "",
                            request, f"lost a {key} variant")], _NO_CUT) for i in gone]
            out += [([Found(f"{prefix}.variant_added", f"{h.pointer}/{key}/{j}", "",
                            not request, f"gained a {key} variant")], _NO_CUT) for j in new]
        return out

    @staticmethod
    def _hidden(resolver: Resolver, node: Any, at: str, request: bool) -> bool:
        """A read-only field is never sent, a write-only one never received."""
        schema, _ = resolver.follow(node, at)
        return isinstance(schema, dict) and schema.get(
            "readOnly" if request else "writeOnly") is True


def _values(keys: dict[str, Any]) -> list[Any] | None:
    if "const" in keys:
        return [keys["const"]]
    return keys["enum"] if isinstance(keys.get("enum"), list) else None


def _variant_key(variant: Any) -> str:
    return canonical(variant.get("$ref", variant) if isinstance(variant, dict) else variant)


def _variants(was: list[Any], now: list[Any]
              ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """oneOf/anyOf variants paired: the same `$ref` or the same schema wherever it moved,
    the rest in order; then those left over on each side."""
    keys = [_variant_key(v) for v in now]
    free = list(range(len(now)))
    pairs: list[tuple[int, int]] = []
    unpaired: list[int] = []
    for i, variant in enumerate(was):
        key = _variant_key(variant)
        j = next((j for j in free if keys[j] == key), None)
        if j is None:
            unpaired.append(i)
        else:
            pairs.append((i, j))
            free.remove(j)
    pairs += list(zip(unpaired, free, strict=False))
    return pairs, unpaired[len(free):], free[len(unpaired):]
