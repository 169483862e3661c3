"""Every string a chat request sends to a provider, where it stands, and the request with
each one redacted: the security filter scans and redacts them all, not only the message
text (a message's name, a tool call's arguments, a JSON schema's descriptions and the
stop sequences reached remote providers unscanned)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from llmdocs.services.gateway.providers.base import ChatRequest, estimate_tokens
from llmdocs.services.gateway.security import Finding, Scan, redact

# the keys a location names: the chat API's and JSON Schema's own; any other key is the
# caller's, and may be the very text found, so a location shows it as "*"
_NAMES = frozenset({
    "role", "content", "name", "tool_calls", "tool_call_id", "function_call", "function",
    "arguments", "type", "id", "refusal", "properties", "items", "description", "title",
    "enum", "const", "default", "examples", "pattern", "format", "required", "anyOf",
    "oneOf", "allOf", "$defs", "definitions", "additionalProperties"})
KEY = "<key>"  # ends the location of a key


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(location, string) of each string in a JSON value, each key before its value."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{KEY}", key
            yield from _strings(item, f"{where}.{key if key in _NAMES else '*'}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _rebuilt(value: Any, text: Callable[[], str]) -> Any:
    """The value with each string, in `_strings`' order, replaced by the next `text()`."""
    if isinstance(value, str):
        return text()
    if isinstance(value, dict):
        return {text(): _rebuilt(item, text) for item in value.values()}
    if isinstance(value, list):
        return [_rebuilt(item, text) for item in value]
    return value


@dataclass(frozen=True)
class Outgoing:
    """The strings of a request as the filter scans them (`texts`), with the message
    each is in (-1: none) and its location."""

    request: ChatRequest
    texts: list[str]
    places: list[tuple[int, str]]

    @classmethod
    def of(cls, request: ChatRequest) -> Outgoing:
        texts: list[str] = []
        places: list[tuple[int, str]] = []
        parts = [(i, _strings(m, f"messages[{i}]")) for i, m in enumerate(request.messages)]
        parts += [(-1, _strings(request.stop, "stop")),
                  (-1, _strings(request.json_schema, "json_schema"))]
        for message, strings in parts:
            for where, text in strings:
                texts.append(text)
                places.append((message, where))
        return cls(request, texts, places)

    def tokens(self) -> int:
        """An upper-leaning guess of the prompt's tokens (see `estimate_tokens`): each
        string sent but keys and roles, and 4 a message for its role and framing."""
        return sum(estimate_tokens(text) for text, (_, where) in zip(self.texts, self.places,
                                                                      strict=True)
                   if not where.endswith((KEY, ".role"))) + 4 * len(self.request.messages)

    def located(self, scan: Scan) -> Scan:
        """The scan's findings as the caller sees them: by message and location, each
        span in its own string."""
        found = []
        for f in scan.findings:
            if f.message >= 0:
                message, where = self.places[f.message]
                f = Finding(f.type, message, f.start, f.end, where)
            found.append(f)
        return replace(scan, findings=tuple(found))

    def redacted(self, scan: Scan, placeholders: dict[str, str]) -> ChatRequest:
        """The request with each finding of `scan` (of `texts`) replaced by a
        placeholder, wherever it stands; `placeholders` collects them (see `redact`)."""
        found: dict[int, list[Finding]] = {}
        for finding in scan.findings:
            found.setdefault(finding.message, []).append(finding)
        texts = iter([redact(text, found[i], placeholders) if i in found else text
                      for i, text in enumerate(self.texts)])
        request = self.request
        return replace(request, messages=[_rebuilt(m, texts.__next__) for m in request.messages],
                       stop=_rebuilt(request.stop, texts.__next__),
                       json_schema=_rebuilt(request.json_schema, texts.__next__))
