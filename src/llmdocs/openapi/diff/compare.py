"""Two parsed specs walked side by side: operations matched by method and path (path
parameters by position, whatever their names), each part compared with its rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llmdocs.openapi.analyse import METHODS
from llmdocs.openapi.bounds import SpecBounds
from llmdocs.openapi.diff.changes import Change, Diff, Side, pointer
from llmdocs.openapi.diff.schema import Found, Schemas
from llmdocs.openapi.load import SpecError
from llmdocs.openapi.resolve import Resolver

_TEMPLATE = re.compile(r"\{[^}/]*\}")
MAX_CHANGES = 100_000  # a bound on the answer, far above two versions of one API


@dataclass
class _Op:
    key: str  # "DELETE /sessions/{session_id}"
    at: str  # its JSON pointer
    node: dict[str, Any]
    path: str
    shared_params: list[Any]  # the path item's
    params_at: str


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _operations(doc: dict[str, Any], resolver: Resolver,
                bounds: SpecBounds) -> dict[tuple[str, str], _Op]:
    """Operations by (method, path with its parameters unnamed), in the spec's order."""
    out: dict[tuple[str, str], _Op] = {}
    for path, raw in _dict(doc.get("paths")).items():
        item, at = resolver.follow(raw, pointer("paths", path))
        item = _dict(item)
        for method in METHODS:
            if isinstance(item.get(method), dict):
                out[(method, _TEMPLATE.sub("{}", str(path)))] = _Op(
                    f"{method.upper()} {path}", f"{at}/{method}", item[method], str(path),
                    _list(item.get("parameters")), f"{at}/parameters")
    if len(out) > bounds.max_operations:
        raise SpecError(f"the spec has {len(out)} operations; the limit is "
                        f"{bounds.max_operations}")
    return out


def _security(op: dict[str, Any], doc: dict[str, Any]) -> set[frozenset[tuple[str, str]]]:
    """The alternatives an operation accepts, each the schemes (and scopes) sent together."""
    raw = op["security"] if "security" in op else doc.get("security", [])
    return {frozenset((str(name), " ".join(sorted(map(str, _list(scopes)))))
                      for name, scopes in _dict(alternative).items())
            for alternative in _list(raw)}


def _open(alternatives: set[frozenset[tuple[str, str]]]) -> bool:
    """No authentication needed: no requirement, or an empty alternative among them."""
    return not alternatives or frozenset() in alternatives


def _said(alternatives: set[frozenset[tuple[str, str]]]) -> list[str]:
    return sorted(" + ".join(f"{n}[{s}]" if s else n for n, s in sorted(alt)) or "none"
                  for alt in alternatives)


class _Differ:
    def __init__(self, base: dict[str, Any], head: dict[str, Any], bounds: SpecBounds) -> None:
        self.docs = (base, head)
        self.base = Resolver(base, bounds.max_ref_depth, bounds.max_expanded_nodes)
        self.head = Resolver(head, bounds.max_ref_depth, bounds.max_expanded_nodes)
        self.bounds = bounds
        self.schemas = Schemas(self.base, self.head, bounds.max_expanded_nodes)
        self.out: list[Change] = []
        self.op: str | None = None

    def add(self, kind: str, at: str, breaking: bool, message: str, before: Any = None,
            after: Any = None) -> None:
        if len(self.out) >= MAX_CHANGES:
            raise SpecError(f"the specs differ in more than {MAX_CHANGES} ways")
        self.out.append(Change(kind=kind, operation=self.op, location=at, breaking=breaking,
                               message=message, before=before, after=after))

    def run(self) -> Diff:
        self.base.check_refs()
        self.head.check_refs()
        self.top()
        old = _operations(self.docs[0], self.base, self.bounds)
        new = _operations(self.docs[1], self.head, self.bounds)
        for key, was in old.items():
            self.op = was.key
            if key not in new:
                self.add("operation.removed", was.at, True, f"{was.key} was removed", was.key)
                continue
            start = len(self.out)
            self.operation(was, new[key])
            # a schema reached twice in one operation is one change, said once
            kept: dict[tuple[str, str, str], Change] = {}
            for change in self.out[start:]:
                kept.setdefault((change.kind, change.location, change.message), change)
            self.out[start:] = list(kept.values())
        for key, now in new.items():
            if key not in old:
                self.op = now.key
                self.add("operation.added", now.at, False, f"{now.key} was added", None,
                         now.key)
        return Diff.of(self.out)

    def top(self) -> None:
        """Outside operations: the API's description and its servers."""
        was, now = _dict(self.docs[0].get("info")), _dict(self.docs[1].get("info"))
        if was.get("description") != now.get("description"):
            self.add("description.changed", "/info/description", False,
                     "The API's description changed", was.get("description"),
                     now.get("description"))
        urls = [[_text(_dict(s).get("url")) for s in _list(d.get("servers"))]
                for d in self.docs]
        for i, url in enumerate(urls[0]):
            if url not in urls[1]:
                self.add("server.removed", f"/servers/{i}", False,
                         f"Server {url} was removed", url)
        for i, url in enumerate(urls[1]):
            if url not in urls[0]:
                self.add("server.added", f"/servers/{i}", False, f"Server {url} was added",
                         None, url)

    def texts(self, was: dict[str, Any], now: dict[str, Any], at: str, whose: str,
              keys: tuple[str, ...] = ("description",)) -> None:
        """Words changed: they break no client, but they make a document stale."""
        for key in keys:
            if was.get(key) != now.get(key):
                self.add(f"{key}.changed", f"{at}/{key}", False,
                         f"{whose[0].upper()}{whose[1:]} {key} changed", was.get(key),
                         now.get(key))

    def operation(self, was: _Op, now: _Op) -> None:
        self.texts(was.node, now.node, now.at, "the operation's", ("summary", "description"))
        if now.node.get("deprecated") is True and was.node.get("deprecated") is not True:
            self.add("operation.deprecated", f"{now.at}/deprecated", False,
                     f"{now.key} is now deprecated", False, True)
        self.parameters(was, now)
        self.request(was, now)
        self.responses(was, now)
        before, after = _security(was.node, self.docs[0]), _security(now.node, self.docs[1])
        if before != after:
            breaking = not _open(after) and (_open(before) or not before <= after)
            at = f"{now.at}/security" if "security" in now.node else "/security"
            self.add("security.changed", at, breaking,
                     f"Accepted authentication changed from {', '.join(_said(before))} to "
                     f"{', '.join(_said(after))}", _said(before), _said(after))

    def params(self, op: _Op, resolver: Resolver) -> dict[tuple[str, str], tuple[
            dict[str, Any], str]]:
        """(location, name) → (parameter, pointer); a path parameter keyed by position."""
        slots = [m.group()[1:-1] for m in _TEMPLATE.finditer(op.path)]
        out: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for raw, at in [*((p, f"{op.params_at}/{i}") for i, p in enumerate(op.shared_params)),
                        *((p, f"{op.at}/parameters/{i}") for i, p in
                          enumerate(_list(op.node.get("parameters"))))]:
            param, at = resolver.follow(raw, at)
            if not isinstance(param, dict) or "name" not in param:
                continue
            name, where = str(param["name"]), str(param.get("in", ""))
            if where == "path" and name in slots:
                name = f"#{slots.index(name)}"
            out[(where, name.lower() if where == "header" else name)] = (param, at)
        return out

    def parameters(self, was: _Op, now: _Op) -> None:
        old, new = self.params(was, self.base), self.params(now, self.head)
        for key, (param, at) in old.items():
            if key not in new:
                self.add("parameter.removed", at, True,
                         f"{key[0]} parameter `{param['name']}` was removed", param["name"])
        for key, (param, at) in new.items():
            label = f"{key[0]} parameter `{param['name']}`"
            if key not in old:
                required = param.get("required") is True
                self.add("parameter.added", at, required,
                         f"New {'required' if required else 'optional'} {label}", None,
                         param["name"])
                continue
            before, before_at = old[key]
            if (before.get("required") is True) != (param.get("required") is True):
                made = param.get("required") is True
                self.add(f"parameter.{'required' if made else 'optional'}",
                         f"{at}/required", made,
                         f"{label[0].upper()}{label[1:]} became "
                         f"{'required' if made else 'optional'}", not made, made)
            self.texts(before, param, at, f"the {label}'s")
            self.schema(self._param_schema(before, before_at),
                        self._param_schema(param, at), "parameter", label)

    @staticmethod
    def _param_schema(param: dict[str, Any], at: str) -> tuple[Any, str]:
        if "schema" in param:
            return param["schema"], f"{at}/schema"
        for kind, media in _dict(param.get("content")).items():
            return _dict(media).get("schema"), f"{at}/content{pointer(kind)}/schema"
        return {}, at

    def schema(self, was: tuple[Any, str], now: tuple[Any, str], side: Side,
               label: str) -> None:
        """Every change between two schemas, said of the field it is in."""
        for found in self.schemas.compare(was[0], was[1], now[0], now[1], side):
            self.add(found.kind, found.location, found.breaking, _message(found, side, label),
                     found.before, found.after)

    def request(self, was: _Op, now: _Op) -> None:
        before, before_at = self.base.follow(was.node.get("requestBody"),
                                             f"{was.at}/requestBody")
        after, after_at = self.head.follow(now.node.get("requestBody"),
                                           f"{now.at}/requestBody")
        if not isinstance(before, dict) and not isinstance(after, dict):
            return
        if not isinstance(after, dict):
            self.add("request.body_removed", before_at, True, "The request body was removed")
            return
        required = after.get("required") is True
        if not isinstance(before, dict):
            self.add("request.body_added", after_at, required,
                     f"A{' required' if required else 'n optional'} request body was added")
            return
        if required and before.get("required") is not True:
            self.add("request.body_required", f"{after_at}/required", True,
                     "The request body became required", False, True)
        self.texts(before, after, after_at, "the request body's")
        self.content(before, before_at, after, after_at, "request", "")

    def content(self, was: dict[str, Any], was_at: str, now: dict[str, Any], now_at: str,
                side: Side, label: str) -> None:
        old, new = _dict(was.get("content")), _dict(now.get("content"))
        whose = "request" if side == "request" else f"response {label}"
        for kind in old:
            if kind not in new:
                self.add(f"{side}.media_removed", f"{was_at}/content{pointer(kind)}", True,
                         f"The {whose} no longer comes as {kind}", kind)
        for kind, media in new.items():
            at = f"{now_at}/content{pointer(kind)}"
            if kind not in old:
                self.add(f"{side}.media_added", at, False,
                         f"The {whose} may now come as {kind}", None, kind)
            else:
                self.schema((_dict(old[kind]).get("schema"),
                             f"{was_at}/content{pointer(kind)}/schema"),
                            (_dict(media).get("schema"), f"{at}/schema"), side, label)

    def responses(self, was: _Op, now: _Op) -> None:
        old = {str(k): v for k, v in _dict(was.node.get("responses")).items()}
        new = {str(k): v for k, v in _dict(now.node.get("responses")).items()}
        for status in old:
            if status not in new:
                success = status.startswith("2") or status == "default"
                self.add("response.status_removed", f"{was.at}/responses{pointer(status)}",
                         success, f"Response {status} was removed", status)
        for status, raw in new.items():
            at = f"{now.at}/responses{pointer(status)}"
            if status not in old:
                self.add("response.status_added", at, False, f"Response {status} was added",
                         None, status)
                continue
            before, before_at = self.base.follow(old[status],
                                                 f"{was.at}/responses{pointer(status)}")
            after, after_at = self.head.follow(raw, at)
            before, after = _dict(before), _dict(after)
            self.texts(before, after, after_at, f"response {status}'s")
            self.headers(before, before_at, after, after_at, status)
            self.content(before, before_at, after, after_at, "response", status)

    def headers(self, was: dict[str, Any], was_at: str, now: dict[str, Any], now_at: str,
                status: str) -> None:
        old = {str(k).lower(): str(k) for k in _dict(was.get("headers"))}
        new = {str(k).lower(): str(k) for k in _dict(now.get("headers"))}
        for low, name in old.items():
            if low not in new:
                self.add("response.header_removed", f"{was_at}/headers{pointer(name)}", True,
                         f"Response {status} no longer sends header {name}", name)
        for low, name in new.items():
            if low not in old:
                self.add("response.header_added", f"{now_at}/headers{pointer(name)}", False,
                         f"Response {status} now sends header {name}", None, name)


def _message(found: Found, side: Side, label: str) -> str:
    """`found` said of its field: "Request field `user.email` was removed"."""
    if side == "parameter":
        subject = label + (f" field `{found.path}`" if found.path else "")
    elif side == "request":
        subject = f"request field `{found.path}`" if found.path else "the request body"
    else:
        subject = (f"response {label} field `{found.path}`" if found.path
                   else f"the response {label} body")
    return f"{subject[0].upper()}{subject[1:]} {found.what}"


def diff(base: dict[str, Any], head: dict[str, Any], bounds: SpecBounds | None = None) -> Diff:
    """What changed from `base` to `head` (both as `parse_spec` returns them), and whether
    each change breaks a client; a spec beyond the bounds or with a bad `$ref` is a
    `SpecError`."""
    return _Differ(base, head, bounds or SpecBounds()).run()

