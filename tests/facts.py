"""The facts a spec states, and which of them a Markdown document renders (for the
quality bench, bench/quality.py, and its tests).

Written apart from the generator on purpose: it reads the raw spec (Swagger 2.0 or
OpenAPI 3.x, local `$ref`s resolved here) and the document's text only, so it measures
any renderer the same way, llmdocs or widdershins.

A fact is one enum value, default, bound (minimum, maximum, exclusive bounds, length,
item counts, pattern), response field or server URL. It belongs to an operation
(`GET /pets`) or, for a server URL, to the whole API. A document renders an operation's
fact when the value appears, outside code blocks, in that operation's part (from the
first `METHOD /path` naming it to the next operation's or the next `#`/`##` heading) or
in the section of the shared schema it comes from, on a line that also names the
parameter or field it belongs to (`|status|available|`, `| limit | ... default 20 |`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
          "maxLength", "minItems", "maxItems", "pattern")
PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./{}")
WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
SCHEMA_REFS = ("#/components/schemas/", "#/definitions/")
MAX_DEPTH = 8  # nested schema levels followed; deeper (or circular) ones are not facts


@dataclass(frozen=True)
class Fact:
    operation: str | None  # "GET /pets", or None for the API as a whole
    kind: str  # enum, default, minimum, ..., response field, server
    where: str  # the parameter or field it belongs to
    value: str
    schema: str | None = None  # the named (shared) schema it comes from, if any


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path} is not a spec"
    return doc


def text_of(value: Any) -> str:
    """A value as a document writes it: 10.0 as 10, True as true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Spec:
    """A raw spec walked for its facts."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.swagger = "swagger" in doc

    def deref(self, node: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, frozenset[str]]:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                return {}, seen
            seen = seen | {ref}
            target: Any = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node, seen

    def operations(self) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
        """Each operation as "METHOD /path", its object and its parameters (path-level
        ones included)."""
        for path, item in (self.doc.get("paths") or {}).items():
            item, _ = self.deref(item)
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") or []
            for method in METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    yield f"{method.upper()} {path}", op, [*shared, *(op.get("parameters") or [])]

    def servers(self) -> list[str]:
        if self.swagger:
            host = self.doc.get("host")
            if not host:
                return []
            base = str(self.doc.get("basePath", "")).rstrip("/")
            return [f"{scheme}://{host}{base}" for scheme in self.doc.get("schemes") or ["https"]]
        return [str(s["url"]) for s in self.doc.get("servers") or []
                if isinstance(s, dict) and s.get("url") not in (None, "", "/")]

    def facts(self) -> list[Fact]:
        found = [Fact(None, "server", "servers", url) for url in self.servers()]
        for name, op, parameters in self.operations():
            found += self.operation_facts(name, op, parameters)
        return list(dict.fromkeys(found))

    def operation_facts(self, name: str, op: dict[str, Any], parameters: list[Any]) -> list[Fact]:
        found: list[Fact] = []
        for raw in parameters:
            param, seen = self.deref(raw)
            if not isinstance(param, dict):
                continue
            label = str(param.get("name", "?"))
            if param.get("in") == "body":  # Swagger 2.0: the request body
                found += self.schema_facts(name, "body", param.get("schema"), seen, False)
            elif "schema" in param:
                found += self.schema_facts(name, label, param["schema"], seen, False)
            else:  # Swagger 2.0: the constraints sit on the parameter itself
                found += self.schema_facts(name, label, param, seen, False)
        body, seen = self.deref(op.get("requestBody"))
        for media in (body.get("content") or {}).values() if isinstance(body, dict) else []:
            if isinstance(media, dict):
                found += self.schema_facts(name, "body", media.get("schema"), seen, False)
        for answer in (op.get("responses") or {}).values():
            answer, seen = self.deref(answer)
            if not isinstance(answer, dict):
                continue
            schemas = [answer.get("schema")] if self.swagger else [
                media.get("schema") for media in (answer.get("content") or {}).values()
                if isinstance(media, dict)]
            for schema in schemas:
                found += self.schema_facts(name, "", schema, seen, True)
        return found

    def schema_facts(self, op: str, where: str, schema: Any, seen: frozenset[str],
                     response: bool, depth: int = 0, named: str | None = None) -> list[Fact]:
        """The facts of one schema and, for objects and arrays, of what they hold; in a
        response, each named field is a fact of its own."""
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str) and ref.startswith(SCHEMA_REFS):
            named = ref.rsplit("/", 1)[1]
        schema, seen = self.deref(schema, seen)
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return []
        found = [Fact(op, "enum", where, text_of(v), named) for v in schema.get("enum") or []]
        if "default" in schema:
            found.append(Fact(op, "default", where, text_of(schema["default"]), named))
        found += [Fact(op, key, where, text_of(schema[key]), named) for key in BOUNDS
                  if key in schema and not isinstance(schema[key], bool)]
        for part in (*(schema.get("allOf") or []), *(schema.get("oneOf") or []),
                     *(schema.get("anyOf") or [])):
            found += self.schema_facts(op, where, part, seen, response, depth + 1, named)
        if "items" in schema:
            inner = f"{where}[]" if where else "[]"
            found += self.schema_facts(op, inner, schema["items"], seen, response, depth + 1,
                                       named)
        for field, sub in (schema.get("properties") or {}).items():
            path = f"{where}.{field}" if where else str(field)
            if response:
                found.append(Fact(op, "response field", path, str(field), named))
            found += self.schema_facts(op, path, sub, seen, response, depth + 1, named)
        return found


# --- where a document renders them ---------------------------------------------------

def without_code(markdown: str) -> str:
    """The text outside fenced code blocks (examples show values, they do not state them)."""
    kept, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def find_bounded(text: str, value: str, start: int = 0) -> int:
    """The first place `value` appears in `text` not glued to a longer name or number."""
    at = text.find(value, start)
    while at >= 0:
        before = text[at - 1] if at else " "
        after = text[at + len(value)] if at + len(value) < len(text) else " "
        edge_ok = (value[:1] not in WORD_CHARS or before not in WORD_CHARS) and \
                  (value[-1:] not in WORD_CHARS or after not in WORD_CHARS)
        if edge_ok and not (value[-1:].isdigit() and after == "." and
                            text[at + len(value) + 1: at + len(value) + 2].isdigit()):
            return at
        at = text.find(value, at + 1)
    return -1


def anchor(text: str, operation: str) -> int:
    """Where the document names `METHOD /path` (not a longer path) as a title: on a
    heading or a line of its own; else where it first names it at all."""
    method, path = operation.split(" ", 1)
    first = -1
    for spelling in (operation, f"{method.lower()} {path}"):
        at = text.find(spelling)
        while at >= 0:
            end = at + len(spelling)
            if end >= len(text) or text[end] not in PATH_CHARS:
                start = text.rfind("\n", 0, at) + 1
                stop = text.find("\n", end)
                line = text[start:len(text) if stop < 0 else stop]
                if line.startswith("#") or heading(line) or \
                        line.strip().strip("`").strip() == spelling:
                    return at
                first = at if first < 0 else min(first, at)
            at = text.find(spelling, at + 1)
    return first


def parts(markdown: str, operations: list[str]) -> dict[str, str]:
    """Each operation's part of the document (absent when the document never names it)."""
    text = without_code(markdown)
    starts = sorted((at, op) for op in operations if (at := anchor(text, op)) >= 0)
    heads = [i + 1 for i, ch in enumerate(text) if ch == "\n"
             and text.startswith(("# ", "## "), i + 1)]
    found: dict[str, str] = {}
    for n, (at, op) in enumerate(starts):
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        end = min([starts[n + 1][0]] if n + 1 < len(starts) else [len(text)])
        end = min([end] + [h for h in heads if h > line_end])
        found[op] = text[at:end]
    return found


def heading(line: str) -> tuple[int, str] | None:
    """A Markdown (`## Pet`) or HTML (`<h2 id="x">Pet</h2>`) heading's level and text."""
    stripped = line.strip()
    if stripped.startswith("#"):
        level = len(stripped) - len(stripped.lstrip("#"))
        return level, stripped[level:].strip().strip("`").strip()
    if stripped[:2].lower() == "<h" and stripped[2:3].isdigit() and ">" in stripped:
        inner = stripped[stripped.index(">") + 1:]
        return int(stripped[2]), inner.split("<", 1)[0].strip()
    return None


def schema_sections(markdown: str) -> dict[str, str]:
    """Each section titled with a name alone (a shared schema's, when the document has
    one), up to the next heading of the same or a higher level; sections of one title
    (Jupyter's tag and schema `Contents`) are read together."""
    lines = without_code(markdown).splitlines()
    heads = [(i, h) for i, line in enumerate(lines) if (h := heading(line))]
    sections: dict[str, str] = {}
    for n, (i, (level, title)) in enumerate(heads):
        end = next((j for j, (lv, _) in heads[n + 1:] if lv <= level), len(lines))
        if title and " " not in title:  # a tag may share its name with a schema
            sections[title] = sections.get(title, "") + "\n" + "\n".join(lines[i + 1:end])
    return sections


def rendered(markdown: str, facts: list[Fact]) -> list[Fact]:
    """The facts the document states where they belong: in the operation's part, or in
    the section of the shared schema it comes from (which operations link to)."""
    ops = list(dict.fromkeys(f.operation for f in facts if f.operation))
    by_op = parts(markdown, ops)
    by_schema = schema_sections(markdown)
    whole = without_code(markdown)

    def shown(fact: Fact) -> bool:
        if fact.operation is None:
            return find_bounded(whole, fact.value) >= 0
        if fact.operation not in by_op:  # an operation left out states nothing
            return False
        return any(stated(text, fact) for text in (
            by_op.get(fact.operation, ""), by_schema.get(fact.schema or "", "")))

    return [f for f in facts if shown(f)]


def owner(fact: Fact) -> str:
    """The name of the parameter or field a fact belongs to (`tags[].name` → `name`)."""
    name = fact.where.replace("[]", "").rsplit(".", 1)[-1]
    return "" if name == "body" or fact.kind == "response field" else name


def stated(text: str, fact: Fact) -> bool:
    """Whether `text` states the fact: its value on a line that names its owner."""
    name = owner(fact)
    if not name:
        return find_bounded(text, fact.value) >= 0
    return any(find_bounded(line, name) >= 0 and find_bounded(line, fact.value) >= 0
               for line in text.splitlines() if fact.value in line)
