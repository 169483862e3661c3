"""The phrases of a document that state a fact about an API: `METHOD /path`, a status
code where one is meant, an enum value after "one of", a bound in numbers ("at most 50
characters", "1 ≤ value ≤ 100"). Token by token with a fixed look-around: linear."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Literal, NamedTuple

from llmdocs.claims.extract import HTTP_METHODS

Side = Literal["min", "max"]
_PUNCT = ".,;:!?()[]\"'*_“”"
_CLAUSE_ENDS = (";", ".", "\u2014", "\u2013")  # em and en dash
_STATUS_CUES = frozenset({"return", "returns", "returned", "returning", "respond",
                          "responds", "responded", "response", "responses", "status",
                          "code", "codes", "http", "answer", "answers", "answered",
                          "fails", "error", "errors"})
# words that may follow a status meant as one ("returns 404 when …", not "returns 100 users")
_AFTER_STATUS = frozenset({"when", "if", "on", "for", "and", "or", "with", "unless",
                           "because", "after", "error", "status", "code", "response",
                           "otherwise", "instead", "is", "means", "then", "to"})
_NOT_STATUS = frozenset({"default", "example", "e.g", "value", "values", "="})
_REASONS = {str(s.value): s.phrase.lower().split() for s in HTTPStatus}
_UNITS = {"character": "length", "characters": "length", "chars": "length",
          "char": "length", "long": "length", "length": "length", "letters": "length",
          "items": "items", "item": "items", "elements": "items", "entries": "items",
          "value": "value"}
_MAX = {("at", "most"): "", ("up", "to"): "", ("no", "more", "than"): "",
        ("not", "exceed"): "", ("less", "than"): "", ("fewer", "than"): "",
        ("maximum",): "", ("max",): "", ("maxlength",): "length", ("maxitems",): "items",
        ("maximum", "length"): "length", ("max", "length"): "length"}
_MIN = {("at", "least"): "", ("no", "less", "than"): "", ("more", "than"): "",
        ("greater", "than"): "", ("minimum",): "", ("min",): "", ("minlength",): "length",
        ("minitems",): "items", ("minimum", "length"): "length", ("min", "length"): "length"}
_CUES: dict[str, list[tuple[tuple[str, ...], Side, str]]] = {}  # by their first word
for _phrase, _side, _unit in sorted(
        [(words, "max", unit) for words, unit in _MAX.items()]
        + [(words, "min", unit) for words, unit in _MIN.items()],
        key=lambda cue: -len(cue[0])):  # the longest phrase first
    _CUES.setdefault(_phrase[0], []).append((_phrase, _side, _unit))  # type: ignore[arg-type]
_FILLER = frozenset({"of", "a", "the", "is", "value", "size", "to"})
_BELOW = ("≤", "<=", "<")
_ABOVE = ("≥", ">=", ">")
_SEPARATORS = frozenset({"", "or", "and", "|", "/"})  # a token's core; "," is ""
_ENUM_CUES = (("one", "of"), ("either",), ("allowed",), ("possible",), ("enum",),
              ("can", "be"), ("must", "be"), ("accepts",), ("valid", "values"))


class Token(NamedTuple):
    raw: str  # as written, backticks apart
    core: str  # without punctuation around it
    span: int  # the code span it is in, -1 outside code


def tokenize(text: str) -> list[Token]:
    """Whitespace-separated tokens; a backtick starts or ends a code span."""
    tokens: list[Token] = []
    span, spans = -1, 0
    for piece in text.replace("`", " ` ").split():
        if piece == "`":
            span, spans = (spans, spans + 1) if span < 0 else (-1, spans)
            continue
        tokens.append(Token(piece, piece if span >= 0 else piece.strip(_PUNCT), span))
    return tokens


def status_of(text: str) -> str | None:
    """`404` or `4XX` as a status code, upper case; None for anything else."""
    if len(text) == 3 and text[0] in "12345" and (text[1:].isdigit()
                                                  or text[1:].upper() == "XX"):
        return text.upper()
    return None


def alone_in_code(tokens: list[Token], i: int) -> bool:
    """The only token of its code span (`` `404` ``)."""
    span = tokens[i].span
    return span >= 0 and (i == 0 or tokens[i - 1].span != span) and (
        i + 1 == len(tokens) or tokens[i + 1].span != span)


def reason_after(tokens: list[Token], i: int) -> int:
    """How many tokens after a status are its reason phrase ("Not Found"): 0 for none."""
    reason = _REASONS.get(tokens[i].core, [])
    words = [t.core.lower() for t in tokens[i + 1:i + 1 + len(reason)]]
    return len(reason) if reason and words == reason else 0


def status_meant(tokens: list[Token], i: int, of_operation: bool = False) -> bool:
    """Whether a 3-digit number is said as a status: after a cue ("returns 404 when",
    "response `200`"), before its reason phrase ("404 Not Found"), in code before a
    condition ("`404` if …") or anywhere in code said `of_operation`; never as a
    default or an example."""
    code = status_of(tokens[i].core)
    if code is None:
        return False
    if reason_after(tokens, i):
        return True
    words = [t.core.lower() for t in tokens[i + 1:i + 2]]
    before = [t.core.lower() for t in tokens[max(0, i - 3):i]]
    if before[-1:] and before[-1] in _NOT_STATUS:
        return False
    cued = any(word in _STATUS_CUES for word in before)
    ends = tokens[i].raw.endswith((".", ",", ";", ":", ")")) or not words
    follows = bool(words) and words[0] in _AFTER_STATUS
    return (cued and (ends or follows or alone_in_code(tokens, i))) or (
        alone_in_code(tokens, i) and (follows or of_operation))


def mentions(tokens: list[Token]) -> list[tuple[int, str, str]]:
    """Each `METHOD /path` (or `METHOD https://host/path`): (index of the method, method,
    path as written)."""
    found = []
    for i, token in enumerate(tokens[:-1]):
        if token.core in HTTP_METHODS:
            path = tokens[i + 1].raw.strip("\"'(*<").rstrip(".,;:)]*\"'>")
            if "://" in path:
                path = "/" + path.split("://", 1)[1].partition("/")[2]
            if path.startswith("/"):
                found.append((i, token.core, path))
    return found


@dataclass(frozen=True)
class Bound:
    """A bound a text states: a minimum or maximum of a value, a length or a count of
    items ("" when the text does not say which)."""

    side: Side
    unit: str
    number: float

    def __str__(self) -> str:
        number = int(self.number) if self.number.is_integer() else self.number
        unit = "" if self.unit in ("", "value") else f" {self.unit}"
        return f"{'minimum' if self.side == 'min' else 'maximum'}{unit} {number}"

    def same(self, other: Bound) -> bool:
        return (self.side, self.number) == (other.side, other.number) and (
            self.unit == other.unit or "" in (self.unit, other.unit))

    def matches(self, stated: dict[tuple[str, str], float | None]) -> bool:
        units = [self.unit] if self.unit else ["value", "length", "items"]
        return any(stated.get((self.side, unit)) == self.number for unit in units)


def _number(word: str) -> float | None:
    try:
        return float(word) if word[:1].isdigit() else None
    except ValueError:
        return None


def _unit_near(words: list[str], at: int) -> str:
    """The unit said just after a number ("50 characters") or just before its cue."""
    for j in (at + 1, at + 2, at - 2, at - 3):
        if 0 <= j < len(words) and words[j] in _UNITS:
            return _UNITS[words[j]]
    return ""


def bounds(tokens: list[Token]) -> list[tuple[int, Bound]]:
    """Every bound stated, with the index of its number."""
    words = [t.core.lower() for t in tokens]
    found: list[tuple[int, Bound]] = []
    used: set[int] = set()

    def add(at: int, side: Side, unit: str) -> None:
        number = _number(words[at]) if 0 <= at < len(words) else None
        if number is not None and at not in used:
            used.add(at)
            found.append((at, Bound(side, unit or _unit_near(words, at), number)))

    for i, word in enumerate(words):
        before, after = (words[i - 1] if i else ""), (words[i + 1] if i + 1 < len(words)
                                                       else "")
        if word in _BELOW or word in _ABOVE:
            below = word in _BELOW
            if before in _UNITS:  # "length ≤ 50"
                add(i + 1, "max" if below else "min", _UNITS[before])
            elif after in _UNITS:  # "1 ≤ value"
                add(i - 1, "min" if below else "max", _UNITS[after])
            else:
                add(i + 1, "max" if below else "min", "")
        elif word == "to" and before and after and (low := _number(before)) is not None \
                and (high := _number(after)) is not None and low < high:  # "1 to 100"
            unit = _unit_near(words, i + 1)
            add(i - 1, "min", unit)
            add(i + 1, "max", unit)
        elif word in ("between", "from") or (word in ("length", "items")
                                             and _number(after) is not None):
            first = i + 1
            if first + 2 < len(words) and words[first + 1] in ("and", "to"):
                unit = _UNITS.get(word, "") or _unit_near(words, first + 2)
                add(first, "min", unit)
                add(first + 2, "max", unit)
        else:
            _cue(words, i, add)
    return found


def _cue(words: list[str], i: int, add: Callable[[int, Side, str], None]) -> None:
    """A bound's words ("at most", "maximum length") at `i` and the number after them."""
    for phrase, side, unit in _CUES.get(words[i], ()):
        if tuple(words[i:i + len(phrase)]) == phrase:
            at = i + len(phrase)
            while at < len(words) and at < i + len(phrase) + 2 and words[at] in _FILLER:
                at += 1
            add(at, side, unit)
            return


@lru_cache(maxsize=4096)
def bounds_in(text: str) -> tuple[Bound, ...]:
    """The bounds a spec's description states (read once per description)."""
    return tuple(bound for _, bound in bounds(tokenize(text[:2000])))


def _spans(tokens: list[Token]) -> list[tuple[int, int]]:
    """Each code span as (first token, token after it)."""
    out: list[tuple[int, int]] = []
    for i, token in enumerate(tokens):
        if token.span >= 0 and (i == 0 or tokens[i - 1].span != token.span):
            out.append((i, i + 1))
        elif token.span >= 0:
            out[-1] = (out[-1][0], i + 1)
    return out


def listed_values(tokens: list[Token]) -> list[tuple[int, str]]:
    """Two or more code spans with only `,` `or` `and` `|` `/` between them ("`member` or
    `admin`"): what a named parameter's or field's line lists as its values."""
    spans = _spans(tokens)
    runs: list[list[tuple[int, int]]] = []
    for span in spans:
        between = tokens[runs[-1][-1][1]:span[0]] if runs else None
        if between is not None and all(t.core.lower() in _SEPARATORS for t in between):
            runs[-1].append(span)
        else:
            runs.append([span])
    return [(start, " ".join(t.raw for t in tokens[start:end]))
            for run in runs if len(run) > 1 for start, end in run]


def enum_values(tokens: list[Token]) -> list[tuple[int, str]]:
    """The values after "one of", "either", "can be" … up to the clause's end, each code
    span or quoted word one value: (index of its first token, value)."""
    words = [t.core.lower() for t in tokens]
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        cue = next((c for c in _ENUM_CUES if tuple(words[i:i + len(c)]) == c), None)
        if cue is None or tokens[i].span >= 0:
            i += 1
            continue
        i += len(cue)
        while i < len(tokens):
            token = tokens[i]
            if token.span >= 0:
                start, span = i, token.span
                while i < len(tokens) and tokens[i].span == span:
                    i += 1
                found.append((start, " ".join(t.raw for t in tokens[start:i])))
                continue
            if token.raw[:1] in "\"“" and len(token.core) > 0:
                found.append((i, token.core))
            elif token.raw.endswith(_CLAUSE_ENDS) or token.core.lower() == "default":
                break
            i += 1
    return found
