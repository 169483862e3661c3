"""What a text may claim: every URL, host, path, method, status code, number and name a
spec (or a set of source texts) states. Plain JSON, so it rides in a workflow's state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult, urlsplit

from llmdocs.claims.extract import HTTP_METHODS, Claim, claims_of

MAX_NODES = 500_000  # values of a spec walked at most (a spec's size is bounded on load)
# keys whose string values a reference shows as code (`Your Name`): their words are names
_VALUE_KEYS = frozenset({"default", "enum", "example", "const", "value"})
_AUTH_HEADER = {"bearer": ("Authorization", "Bearer"), "basic": ("Authorization", "Basic")}


@dataclass
class Vocabulary:
    """The sets a claim is looked up in; names and words are lower case."""

    servers: list[str] = field(default_factory=list)  # in the spec's order
    urls: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    statuses: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)

    # --- building -------------------------------------------------------------------

    @classmethod
    def from_openapi(cls, doc: dict[str, Any]) -> Vocabulary:
        """Everything a parsed OpenAPI document states, plus what follows from it: the
        header a bearer or basic scheme is sent in, and the count of its operations."""
        vocabulary = cls()
        paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
        per_tag: Counter[str] = Counter()
        for path, item in (paths or {}).items():
            vocabulary.paths.add(str(path))
            for method, operation in item.items() if isinstance(item, dict) else ():
                if str(method).upper() in HTTP_METHODS:
                    vocabulary.methods.add(str(method).upper())
                    tags = operation.get("tags") if isinstance(operation, dict) else None
                    per_tag[str(tags[0]) if isinstance(tags, list) and tags else ""] += 1
        # what a sentence may count: operations, paths, groups and each group's size
        vocabulary.numbers.update({str(per_tag.total()), str(len(paths or {})),
                                   str(len(per_tag)), *map(str, per_tag.values())})
        for server in doc.get("servers") or []:
            if isinstance(server, dict) and isinstance(server.get("url"), str):
                vocabulary.servers.append(server["url"].rstrip("/"))
                url = _with_defaults(server)  # as a reference writes it
                if url != server["url"]:
                    vocabulary.servers.append(url.rstrip("/"))
                    vocabulary._add_url(url)
        schemes = (doc.get("components") or {}).get("securitySchemes") or {}
        for scheme in schemes.values() if isinstance(schemes, dict) else ():
            if isinstance(scheme, dict):
                kind = str(scheme.get("scheme", "bearer")).lower() if scheme.get(
                    "type") in ("http", "oauth2", "openIdConnect") else ""
                vocabulary.names.update(w.lower() for w in _AUTH_HEADER.get(kind, ()))
        vocabulary._walk(doc)
        return vocabulary

    @classmethod
    def from_texts(cls, texts: list[str]) -> Vocabulary:
        """What plain source documents state: their claims, and their words as names."""
        vocabulary = cls()
        for text in texts:
            vocabulary._add_text(text)
        vocabulary.names |= vocabulary.words
        return vocabulary

    def _walk(self, doc: Any) -> None:
        stack: list[tuple[Any, str]] = [(doc, "")]
        seen = 0
        while stack and seen < MAX_NODES:
            node, key = stack.pop()
            seen += 1
            if isinstance(node, dict):
                for name, value in node.items():
                    self._add_key(str(name), key)
                    if name != "$ref":
                        stack.append((value, str(name)))
            elif isinstance(node, list):
                stack.extend((value, key) for value in node)
            elif isinstance(node, bool) or node is None:  # a default or an example's
                self.names.add("null" if node is None else str(node).lower())
            elif isinstance(node, int | float):
                self.numbers.add(_number(node))
            else:
                self._add_value(str(node), key)

    def _add_key(self, name: str, parent: str) -> None:
        if parent == "responses" or (len(name) == 3 and name[0] in "12345"
                                     and name[1:].upper() in ("XX", name[1:])):
            self.statuses.add(name.upper())
        if name.startswith("/"):
            self.paths.add(name)
        else:
            self.names.add(name.lower())

    def _add_value(self, value: str, key: str = "") -> None:
        if len(value) <= 200 and (" " not in value.strip() or key in _VALUE_KEYS):
            # a value a reference shows in code, `Your Name` as its words too
            self.names.update({value.lower(), *value.lower().split()})
        self._add_text(value)

    def _add_text(self, text: str) -> None:
        self.words.update(w.strip(".,;:!?()[]\"'`").lower() for w in text.split())
        for claim in claims_of(text):
            if claim.kind == "url":
                self._add_url(claim.text)
            elif claim.kind == "host":
                self.hosts.add(claim.text.lower())
            elif claim.kind == "path":
                self.paths.add(claim.text)
            elif claim.kind == "method":
                self.methods.add(claim.text)
            elif claim.kind in ("status", "number"):
                self.numbers.add(claim.text)
                if claim.kind == "status":
                    self.statuses.add(claim.text)
            else:
                self.names.add(claim.text.lower())

    def _add_url(self, url: str) -> None:
        self.urls.add(url.rstrip("/"))
        parts = _split(url)
        if parts is None:
            return
        if parts.hostname:
            self.hosts.update({parts.hostname.lower(), parts.netloc.lower()})
        if parts.path not in ("", "/"):
            self.paths.add(parts.path.rstrip("/"))

    # --- looking up -----------------------------------------------------------------

    def supports(self, claim: Claim) -> bool:
        """Whether the claim is one the spec or sources state."""
        text = claim.text
        if claim.kind == "url":
            return self._url(text)
        if claim.kind == "host":
            host = text.lower()
            return host in self.hosts or host.split(":", 1)[0] in self.hosts
        if claim.kind == "path":
            return self._path(text)
        if claim.kind == "method":
            return text in self.methods
        if claim.kind == "status":
            return text in self.statuses or f"{text[0]}XX" in self.statuses \
                or text in self.numbers
        if claim.kind == "number":
            return text in self.numbers or _number_text(text) in self.numbers
        return self._name(text)

    def _url(self, url: str) -> bool:
        url = url.rstrip("/")
        if url in self.urls or any(url.lower().startswith(u.lower()) and self._path(
                url[len(u):] or "/") for u in self.urls):
            return True
        parts = _split(url)
        return parts is not None and (parts.netloc.lower() in self.hosts
                                      and self._path(parts.path or "/"))

    @cached_property
    def _templates(self) -> dict[str, list[list[str]]]:
        """Each path's segments, also after each server's base path, by first segment
        ("{}" for a parameter): a claim is compared with a few paths, not all."""
        index: dict[str, list[list[str]]] = {}
        bases = [[], *(_segments(parts.path) for parts in map(_split, self.servers)
                       if parts is not None)]
        for known in self.paths:
            for base in bases:
                segments = base + _segments(known)
                if segments:
                    first = "{}" if segments[0].startswith("{") else segments[0]
                    index.setdefault(first, []).append(segments)
        return index

    def _path(self, path: str) -> bool:
        """A path of the spec, with values for its parameters, or a leading part of one."""
        wanted = _segments(path)
        if not wanted:
            return True
        candidates = self._templates.get(wanted[0], []) + self._templates.get("{}", [])
        return any(len(wanted) <= len(known) and all(
            _segment_matches(t, w) for t, w in zip(known, wanted, strict=False))
            for known in candidates)

    def _name(self, name: str) -> bool:
        lowered = name.lower().replace("[]", "")
        if lowered in self.names:
            return True
        parts = [p for p in lowered.replace(":", ".").split(".") if p]
        return len(parts) > 1 and self._segmented(parts)

    def _segmented(self, parts: list[str]) -> bool:
        """Whether a dotted name is known names joined by dots, a name itself holding a
        dot (`resources.kernel.js`: `resources`, then `kernel.js`) counted too."""
        joins = [True] + [False] * len(parts)  # joins[i]: parts[:i] are known names
        for end in range(1, len(parts) + 1):
            joins[end] = any(joins[start] and ".".join(parts[start:end]) in self.names
                             for start in range(max(0, end - 4), end))
        return joins[-1]

    # --- storing --------------------------------------------------------------------

    def to_json(self) -> dict[str, list[str]]:
        return {f.name: (list(value) if isinstance(value := getattr(self, f.name), list)
                         else sorted(value)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> Vocabulary:
        vocabulary = cls(servers=list(data.get("servers", [])))
        for f in fields(cls):
            if f.name != "servers":
                setattr(vocabulary, f.name, set(data.get(f.name, [])))
        return vocabulary


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _number_text(text: str) -> str:
    try:
        return _number(float(text))
    except ValueError:
        return text


def _segments(path: str) -> list[str]:
    return [s for s in path.split("?", 1)[0].strip("/").split("/") if s]


def _segment_matches(template: str, segment: str) -> bool:
    """A `{parameter}` stands for any one segment; a placeholder for a placeholder."""
    if template.startswith("{") and template.endswith("}"):
        return True
    return template == segment


def _split(url: str) -> SplitResult | None:
    """A URL's parts, or None for text that only looks like one ("http://[::1")."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _with_defaults(server: dict[str, Any]) -> str:
    """A server URL with each `{variable}` at its default, as a reader is shown it."""
    url = str(server["url"])
    variables = server.get("variables")
    for name, variable in variables.items() if isinstance(variables, dict) else ():
        if isinstance(variable, dict) and variable.get("default") is not None:
            url = url.replace(f"{{{name}}}", str(variable["default"]))
    return url
