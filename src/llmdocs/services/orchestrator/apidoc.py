"""API documentation built from the spec, not the model, so no endpoint is invented or
lost: the outline, the reference and the coverage check against the spec. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from llmdocs.openapi import Operation, markdown
from llmdocs.openapi.analyse import METHODS
from llmdocs.openapi.markdown import cell

HTTP_METHODS = tuple(method.upper() for method in METHODS)
_MENTION = re.compile(r"\b(" + "|".join(HTTP_METHODS) + r")\s+`?(/[^\s`'\")\],;]*)")
_HEADING = re.compile(r"^### `?(" + "|".join(HTTP_METHODS) + r") ([^`\s]+)`?\s*$", re.M)


def op_heading(op: Operation) -> str:
    return markdown.op_heading(op.method, op.path)


def document_title(api_title: str) -> str:
    """`Legacy API` → `Legacy API documentation`, not `Legacy API API documentation`."""
    api = api_title.strip()
    return f"{api} documentation" if api.lower().split()[-1:] == ["api"] \
        else f"{api} API documentation"


def groups(operations: list[Operation]) -> dict[str, list[Operation]]:
    """Endpoints by tag, in the spec's order: one section per group."""
    grouped: dict[str, list[Operation]] = {}
    for op in operations:
        grouped.setdefault(op.tag, []).append(op)
    return grouped


ERRORS_ASKED = re.compile(r"\berrors?\b|\bstatus codes?\b|\bfailures?\b", re.I)


def error_rows(operations: list[Operation]) -> list[tuple[str, str, str]]:
    """Every 4xx/5xx response of the spec: (endpoint, status, its description there)."""
    return [(f"{op.method.upper()} {op.path}", code, str(answer.get("description", "")))
            for op in operations for code, answer in op.responses.items()
            if code[:1] in "45"]


def error_codes(operations: list[Operation]) -> str:
    """The error responses as a table, one row per endpoint and status."""
    rows = [f"| `{endpoint}` | `{code}` | {cell(text)} |"
            for endpoint, code, text in error_rows(operations)]
    if not rows:
        return "The spec declares no error responses."
    return "\n".join(["| endpoint | status | description |", "|---|---|---|", *rows])


@lru_cache(maxsize=4096)
def _template(path: str) -> re.Pattern[str]:
    """A spec path as a pattern: each `{parameter}` stands for one segment."""
    return re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)))


def _matches(template: str, path: str) -> bool:
    return _template(template).fullmatch(path.rstrip(".:")) is not None


@dataclass
class Coverage:
    total: int = 0
    covered: int = 0
    missing: list[str] = field(default_factory=list)  # "GET /users: parameter limit"
    invented: list[str] = field(default_factory=list)  # "DELETE /admin"
    missing_ops: list[str] = field(default_factory=list)  # operation ids to restore

    @property
    def ratio(self) -> float:
        return self.covered / self.total if self.total else 1.0

    @property
    def complete(self) -> bool:
        return not self.missing and not self.invented


def blocks(markdown: str) -> dict[tuple[str, str], str]:
    """Each endpoint heading's text, up to the next heading of any endpoint."""
    found = list(_HEADING.finditer(markdown))
    return {(m.group(1), m.group(2)):
            markdown[m.end(): found[i + 1].start() if i + 1 < len(found) else len(markdown)]
            for i, m in enumerate(found)}


def check(markdown: str, operations: list[Operation]) -> Coverage:
    """Every endpoint, parameter and response code of the spec must be in its endpoint's
    block; every `METHOD /path` the draft mentions must exist in the spec."""
    result = Coverage()
    found = blocks(markdown)
    for op in operations:
        key = (op.method.upper(), op.path)
        name = f"{key[0]} {key[1]}"
        items = [("endpoint", name)] + [("parameter", p.name) for p in op.parameters] + [
            ("response", code) for code in op.responses]
        block = found.get(key)
        result.total += len(items)
        if block is None:
            result.missing.append(f"{name}: the endpoint is not documented")
            result.missing_ops.append(op.operation_id)
            continue
        lost = [f"{kind} {value}" for kind, value in items[1:] if f"`{value}`" not in block]
        result.covered += len(items) - len(lost)
        result.missing += [f"{name}: {item} is missing" for item in lost]
        if lost:
            result.missing_ops.append(op.operation_id)
    known = [(op.method.upper(), op.path) for op in operations]
    exact = set(known)  # most mentions name an endpoint as the spec writes it
    for method, path in sorted(set(_MENTION.findall(markdown))):
        if (method, path.rstrip(".:")) in exact:
            continue
        if not any(m == method and _matches(p, path) for m, p in known):
            result.invented.append(f"{method} {path}")
    return result


def _bare(path: str) -> str:
    """A path as the document check reports it: no closing punctuation."""
    return path.rstrip(".,;:)]*\"'>")


def strip_invented(prose: str, invented: list[str]) -> str:
    """Drop the sentences of model prose that mention an endpoint the spec lacks."""
    if not invented:
        return prose
    bad = {(m, _bare(p)) for m, _, p in (item.partition(" ") for item in invented)}
    sentences = re.split(r"(?<=[.!?])\s+|\n", prose)
    kept = [s for s in sentences
            if not any((m, _bare(p)) in bad for m, p in _MENTION.findall(s))]
    return " ".join(s for s in kept if s.strip()).strip()


def strip_invented_block(body: str, invented: list[str]) -> str:
    """`strip_invented` over a section's prose paragraphs; headings and tables stay."""
    if not invented:
        return body
    paragraphs = body.split("\n\n")
    kept = [p if p.lstrip().startswith(("#", "|")) else strip_invented(p, invented)
            for p in paragraphs]
    return "\n\n".join(p for p in kept if p.strip())


def replace_block(body: str, op: Operation, block: str) -> str:
    """Put an endpoint's reference in place of its damaged one (or at the end)."""
    heading = op_heading(op)
    start = body.find(heading)
    if start < 0:
        return f"{body.rstrip()}\n\n{block}".strip()
    end = body.find("\n### ", start + len(heading))
    return body[:start] + block + (body[end:] if end >= 0 else "")
