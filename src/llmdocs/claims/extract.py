"""The checkable facts a sentence states: URLs, hosts, paths, HTTP methods, status codes,
numbers and code names. Token by token, no backtracking: linear in the text."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from llmdocs.claims.sentences import ABBREVIATIONS
from llmdocs.openapi.analyse import METHODS

ClaimKind = Literal["url", "host", "path", "method", "status", "number", "name"]
HTTP_METHODS = frozenset(method.upper() for method in METHODS)
# endings that make a dotted word a host name rather than a field path (a.b.c)
TLDS = frozenset({"com", "org", "net", "io", "dev", "app", "ai", "co", "cloud", "local",
                  "internal", "localhost", "edu", "gov", "info", "biz", "us", "uk", "de",
                  "fr", "eu"})
_STRIP = ".,;:!?()[]\"'*<>%"
_QUOTES = "\"“”"


@dataclass(frozen=True)
class Claim:
    """One fact a text states, by kind, as written."""

    kind: ClaimKind
    text: str


def _is_number(token: str) -> bool:
    parts = token.split(".")
    return all(part.isdigit() for part in parts) and len(parts) <= 4


def _is_ipv4(token: str) -> bool:
    """An IPv4 address at the start of the token (`127.0.0.1-6201` counts)."""
    head = token.split(":", 1)[0]
    stop = next((i for i, c in enumerate(head) if not (c.isdigit() or c == ".")), len(head))
    parts = head[:stop].split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts)


def _is_host(token: str) -> bool:
    name = token.split(":", 1)[0].lower()
    if name == "localhost" or _is_ipv4(token):
        return True
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] in TLDS and all(
        part and part.replace("-", "").isalnum() for part in parts)


def _code_shaped(token: str) -> bool:
    """snake_case, camelCase or dotted.names: an identifier, not an English word."""
    core = token.replace("[]", "")
    if not core or not (core[0].isalpha() or core[0] == "_"):
        return False
    if not all(c.isalnum() or c in "_.-" for c in core):
        return False
    if "_" in core.strip("_") or ("." in core and not core.endswith(".")):
        return True
    return any(a.islower() and b.isupper() for a, b in pairwise(core))


def _token_claims(token: str, in_code: bool) -> list[Claim]:
    if token.lstrip("`(\"'").startswith("<"):
        return []  # a placeholder: `Bearer <token>`
    # a code name may end in a wildcard (`logo-*`, a pattern property); prose's * is bold
    token = token.strip(_STRIP + "`") + ("*" if in_code and token.rstrip("`").endswith("-*")
                                          else "")
    if not token.strip("*"):
        return []
    lowered = token.lower()
    if lowered.startswith(("http://", "https://")) or "://" in lowered:
        return [Claim("url", token.rstrip("/"))]
    if token.startswith("/"):
        return [Claim("path", token)] if len(token) > 1 else []
    token = token.strip("{}")
    if token.lower() in ABBREVIATIONS:
        return []
    if token in HTTP_METHODS:
        return [Claim("method", token)]
    if _is_number(token):
        if len(token) == 3 and token.isdigit() and "1" <= token[0] <= "5":
            return [Claim("status", token)]
        return [Claim("number", token)]
    if _is_host(token):
        return [Claim("host", token)]
    if in_code or _code_shaped(token):
        return [Claim("name", token)] if any(c.isalpha() for c in token) else []
    return []


def claims_of(text: str, *, values_only: bool = False) -> list[Claim]:
    """The claims of a text: backticked tokens and double-quoted words count as names; with
    `values_only` (examples in code blocks) only URLs, hosts, paths and methods count."""
    return [claim for _, claim in indexed_claims(text, values_only=values_only)]


def indexed_claims(text: str, *, values_only: bool = False) -> list[tuple[int, Claim]]:
    """`claims_of`, each claim with the index of its token (backticks apart), so a reader
    that took a token as a fact of its own can leave it out."""
    found: list[tuple[int, Claim]] = []
    in_code, index = False, -1
    for piece in text.replace("`", " ` ").split():
        if piece == "`":
            in_code = not in_code
            continue
        index += 1
        bare = piece.rstrip(".,;:!?)")
        if values_only and ('"' in piece or "=" in piece.partition("://")[0]):
            continue  # an example's value (a JSON string, a form field), not a target
        quoted = len(bare) > 2 and bare[0] in _QUOTES and bare[-1] in _QUOTES
        for claim in _token_claims(piece, in_code or quoted):
            if not values_only or claim.kind in ("url", "host", "path", "method"):
                found.append((index, claim))
    return found
