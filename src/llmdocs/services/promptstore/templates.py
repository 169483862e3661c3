"""Prompt templates: Jinja2 in an immutable sandbox with strict undefined variables,
since templates come from users; names starting with `_` are refused at save time, so
an escape attempt is never stored."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_OPENER = re.compile(r"\{[{%#]")
_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                     keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template or its values are not acceptable; `errors` are field-style entries."""

    def __init__(self, message: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


@dataclass(frozen=True)
class Parsed:
    """What saving a template needs to know: its variables, in order of first use."""

    variables: tuple[str, ...]


def _column(source: str, lineno: int) -> int:
    """Jinja reports only the line of a syntax error; the column is that of the first
    tag on the line that does not parse on its own (1 when there is no better guess)."""
    lines = source.splitlines()
    if not 0 < lineno <= len(lines):
        return 1
    line = lines[lineno - 1]
    openers = [m.start() for m in _OPENER.finditer(line)]
    for start in openers:
        closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[line[start:start + 2]]
        end = line.find(closer, start + 2)
        tag = line[start:] if end < 0 else line[start:end + 2]
        try:
            _env.parse(tag)
        except TemplateSyntaxError as exc:
            if "end of template" not in str(exc):  # a block tag alone lacks its end tag
                return start + 1
    return openers[0] + 1 if openers else 1


def _refuse_private_access(tree: nodes.Template, field: str) -> None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = (node.attr if isinstance(node, nodes.Getattr)
                else getattr(getattr(node, "arg", None), "value", None))
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(
                f"The template accesses '{name}': names starting with '_' are refused "
                "(sandbox).",
                [{"field": field, "message": f"access to '{name}' is refused",
                  "line": node.lineno}])


def _ordered_variables(tree: nodes.Template) -> tuple[str, ...]:
    undeclared = meta.find_undeclared_variables(tree)
    seen: dict[str, None] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            seen.setdefault(node.name, None)
    return tuple(seen)


@lru_cache(maxsize=4096)
def parse(source: str, field: str = "content") -> Parsed:
    """Check a template; raise `TemplateProblem` with line and column on a syntax error
    and on a sandbox escape attempt."""
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        lineno = exc.lineno or 1
        column = _column(source, lineno)
        raise TemplateProblem(
            f"Template syntax error at line {lineno}, column {column}: {exc.message}",
            [{"field": field, "message": exc.message or "syntax error",
              "line": lineno, "column": column}]) from None
    _refuse_private_access(tree, field)
    return Parsed(variables=_ordered_variables(tree))


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _env.from_string(source)


def render(source: str, values: Mapping[str, Any]) -> str:
    """Render a template that `parse` accepted."""
    try:
        return str(_compiled(source).render(**values))
    except SecurityError as exc:
        raise TemplateProblem(f"Refused by the sandbox: {exc}") from None
    except UndefinedError as exc:
        raise TemplateProblem(f"The template uses an undefined value: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"The template failed to render: {exc}") from None


def template_sources(kind: str, content: str) -> list[tuple[str, str]]:
    """(field, template) pairs of a stored prompt: one for text, one per chat message."""
    if kind == "text":
        return [("content", content)]
    messages = json.loads(content)
    return [(f"content.{i}.content", str(m["content"])) for i, m in enumerate(messages)]


def variables_of(sources: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Variables every template of a prompt uses, in order of first use."""
    seen: dict[str, None] = {}
    for field, source in sources:
        for name in parse(source, field).variables:
            seen.setdefault(name, None)
    return tuple(seen)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
