"""The security filter: finds secrets and personal data in a request, and fails closed.

Secrets: the detect-secrets library (Yelp, maintained, ~25 provider-specific detectors
with low false-positive rates: AWS, GitHub, GitLab, Slack, Stripe, OpenAI, JWTs,
private keys, basic-auth URLs, quoted high-entropy strings, secret keywords), plus our
own rules for what it leaves out (unquoted high-entropy tokens, password assignments,
connection strings). A value plugin's values are kept as detect-secrets keeps them (a
quoted string only above the plugin's entropy limit), and an assigned value must look
like a literal one: a schema, placeholder, type name or reference is no secret, so the
prompts built from API specs stay ordinary (cacheable, sent to any provider). Nor is a
URL's placeholder password (`postgres://USER:PASSWORD@db`) or a quoted hash or id with
no secret's name before it on its line; nor an IPv4 address or a version a phone number.
Personal data: our own detectors (emails, phone numbers, card numbers with a Luhn
check, national ids, IBANs with the mod-97 check) and configured keywords. A finding
names its type and span, never the text.

The filter runs on every model call, on prompts built from the same source and
instruction lines again and again: patterns run line by line and what a line, and a
block of lines, holds is remembered (see Detector); only the few patterns that can
match across a line break look at the whole text, and most of them only when it holds
what they need.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters.heuristic import is_likely_id_string, is_sequential_string
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import (
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.keyword import KeywordDetector

DETECTOR_ERROR = "detector_error"
_MEMO_CHARS = 2048
_LINE_MEMO_CHARS = 1024
_BLOCK_MEMO_CHARS = 4096
Span = tuple[str, int, int]  # detector type, start, end
_SKIPPED_PLUGINS = frozenset({"IPPublicDetector"})  # an address is not a secret


@dataclass(frozen=True)
class Finding:
    type: str
    message: int  # index of the message the span is in
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "start": self.start,
                "end": self.end}


@dataclass(frozen=True)
class Scan:
    findings: tuple[Finding, ...]
    error: bool = False  # the detector failed: the request counts as sensitive

    @property
    def sensitive(self) -> bool:
        return self.error or bool(self.findings)

    @property
    def types(self) -> list[str]:
        return sorted({f.type for f in self.findings})


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _iban_ok(raw: str) -> bool:
    iban = raw.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _high_entropy(token: str) -> bool:
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return (has_digit and has_alpha and _entropy(token) >= 4.3
            and not is_sequential_string(token))  # example filler: ABCD...XYZ0123...


# what stands for a value rather than being one: a template, variable, reference, schema,
# format or markup (`{type: string}`, `${API_KEY}`, `{{ secret }}`, `<password>`,
# `%(pw)s`, `[...]`, `(...)`); a bare type or keyword of a schema or language; a name
# in one case joined by "_" or "." (`oa_citations`, `API_KEY`, `settings.db_password`);
# a reference (`os.environ[...]`, `get_secret()`, as detect-secrets' indirect-reference
# filter has it); a mapping key (`type:`, as after `password:` at a line's end in YAML)
_PLACEHOLDER_START = frozenset("{[$<%(")
_NOT_VALUE = re.compile(
    r"string|integer|boolean|number|object|array|null|none|nil|true|false|yes|no|"
    r"required|optional|nullable|str|int|bool|float|double|decimal|long|short|char|"
    r"bytes?|binary|date|datetime|date-time|time|uuid|email|uri|url|text|varchar|any|"
    r"undefined|void|list|dict|map|type|format|example|default|pass(?:word|wd)?|secret|"
    r"token|key|hidden|writeonly|readonly|masked|redacted|empty", re.I)
_NAME_OR_REFERENCE = re.compile(r"[a-z]+(?:[_.][a-z]+)+|[A-Z]+(?:[_.][A-Z]+)+|[\w.-]+[\[(].*")


def _literal(value: str) -> bool:
    """Whether an assigned value looks like a literal one (a password, a key) rather
    than a placeholder, a type or a name: a schema (`password: {type: string}`, in
    every OpenAPI spec with a login) or a template is no secret."""
    word = value.rstrip(".)]}>")
    return not (value[0] in _PLACEHOLDER_START or value.endswith(":") or len(set(word)) < 2
                or _NOT_VALUE.fullmatch(word) or _NAME_OR_REFERENCE.fullmatch(word))


_URL_PASSWORD = re.compile(r"://[^:]*:([^@]*)@")


def _credentials(found: str) -> bool:
    """Whether the `user:password@` of a URL in a match holds a literal password:
    deployment docs show where one goes with `postgresql://llmdocs:secret@db`,
    `https://user:pass@host` or `${DB_USER}:${DB_PASS}@`, which `_literal` knows for
    placeholders. A real default such as `changeme` is a literal and stays found."""
    password = _URL_PASSWORD.search(found)
    return password is None or _literal(password.group(1))


# a hex string of a hash's length: an MD5 sum or a W3C trace id, a SHA-1 (a git
# commit), a SHA-256 content hash; in a documentation prompt far more likely that than a
# key, unless the line names a secret before it (an API token can be hex too)
_HASH_LENGTHS = frozenset({32, 40, 64})
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|bearer|private|"
                          r"session|cookie", re.I)
_SEPARATORS = ",;{([&"  # what ends the value before a value's own key


def keeps(plugin: Any, value: str, line: str, at: int) -> bool:
    """Whether a value a detect-secrets value plugin's `analyze_string` yields at `at`
    in a line is kept: that yields every candidate, and the library's `analyze_line`
    then keeps a high-entropy string only above the plugin's entropy limit (by the
    plugin's own measure), and its scan drops what its heuristic filters call no secret.
    Of these, a prompt gets the two that judge a high-entropy string by its shape and
    name: a sequential string (`0123456789abcdef...`, example filler) and an id (a value
    whose own key ends in `_id`/is `id`, given as the key alone since a prompt puts a
    whole object on one line); plus a hex string of a hash's length. The last two stay
    found when the line names a secret before the value (`"session_id"`, `token: "<hex>"`).
    Its other filters are left: by file name (lock, binary, swagger files), for templates
    and references (`_literal` judges those), for UUIDs (no plugin keeps one: "-" is no
    hex, and a UUID is below the base64 limit; some API keys are UUIDs) and for values
    without a letter (a PIN or an account number is no less private). The keyword
    detector's values (assignments to secret-sounding names) must also look
    like a literal value, as our own password rule's do. Asked only of a value: most
    lines yield none."""
    if isinstance(plugin, HighEntropyStringsPlugin):
        if (plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit
                or is_sequential_string(value)):
            return False
        if _SECRET_NAME.search(line, 0, at):
            return True
        start = max(line.rfind(separator, 0, at) for separator in _SEPARATORS) + 1
        key = line[start:at].lstrip(" \t\"'")
        return not (is_likely_id_string(value, key + value, plugin)
                    or (isinstance(plugin, HexHighEntropyString) and len(value) in _HASH_LENGTHS))
    if isinstance(plugin, KeywordDetector):
        return _literal(value)
    return True


@dataclass(frozen=True)
class Join:
    """For a pattern that can match across a line break, what the line before the break
    must end with and the line after it start with for a match to run across it. The
    pattern runs line by line, and on the whole text only when some break allows it:
    when none does, its matches in the whole text are its matches line by line, for a
    pattern that never ends a match with the break and looks no further than it."""

    end: re.Pattern[str]  # searched in the line, which ends with its "\n"
    start: re.Pattern[str] | None = None  # matched at the next line's start; None: any


_DOTTED = re.compile(r"\d+(?:\.\d+){3,}")
_ASSIGNED_NAME = (r"\b(?:pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|api[_-]?key|"
                 r"access[_-]?token|auth[_-]?token)\b[\"']?")
# (type, pattern, check on the matched group, which group is the secret, where it runs):
# LINE for a pattern that cannot match a line break ("\n"), run line by line and
# remembered by line; a Join for one that can, but only where the lines around the break
# allow it; otherwise a literal that every match contains, and the pattern runs on the
# whole text when the text holds that literal
LINE = None
_Rule = tuple[str, re.Pattern[str], Callable[[str], bool] | None, int, str | Join | None]
_RULES: list[_Rule] = [
    ("private_key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?"
                               r"(?:-----END [A-Z ]*PRIVATE KEY-----|$)"), None, 0,
     "-----BEGIN "),  # the whole block, to its END line
    ("connection_string", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@[^\s'\"]+",
                                     re.I), _credentials, 0, LINE),
    # across a break in the \s* before or after the : or =, so the line before it ends
    # in the name, or the name and the : or =; an unquoted word that more words follow
    # on its line is prose ("Password: Must be ..."), or a type that a union or default
    # follows (`api_key: SecretStr | None = None`); the lookahead stops at the line end
    ("password_assignment", re.compile(
        _ASSIGNED_NAME + r"\s*[:=]\s*(?:[\"']|(?![A-Za-z]+[ \t]+[A-Za-z|=]))([^\s\"',;]{4,})",
        re.I), _literal, 1, Join(re.compile(_ASSIGNED_NAME + r"\s*(?:[:=]\s*)?\Z", re.I))),
    # a URL's `user:password@` is matched whole, first, and dropped by the check: the
    # password before a dotted host is no mailbox (`postgres://USER:PASSWORD@db.internal`)
    ("email", re.compile(r"://[^\s:/@]*:[^\s@/]*@|"
                         r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
     lambda m: "://" not in m, 0, LINE),
    ("credit_card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
     lambda m: 13 <= len(d := re.sub(r"\D", "", m)) <= 19 and _luhn(d), 0, LINE),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban_ok, 0, LINE),
    ("national_id", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"),
     None, 0, LINE),  # US social security number
    ("national_id", re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2}"
                               r" ?[A-D]\b"), None, 0, LINE),  # UK national insurance number
    # across a break that is one [\s.-] between digits, or after a ")" or before a "(";
    # a run of 4 or more dot-separated digit groups (an IPv4 address such as
    # 169.254.169.254, a version 1.22.333.4444) is matched whole from its first digit,
    # first, and dropped by the check, so no phone number is found inside it, whatever
    # follows it (a netmask, a port: `10.1.123.234 255.255.255.0`)
    ("phone", re.compile(_DOTTED.pattern + r"|"
                         r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?"
                         r"\d{2,4}[\s.-]\d{3,4}[\s.-]?\d{3,4}(?![\w-])|\+\d{8,15}\b"),
     lambda m: not _DOTTED.fullmatch(m), 0, Join(re.compile(r"[\d)]\n\Z"), re.compile(r"[\d(]"))),
    ("high_entropy", re.compile(r"[A-Za-z0-9+/_\-]{24,}={0,2}"), _high_entropy, 0, LINE),
]
# a check on the whole match of each pattern of a regex plugin, by the plugin's class
_PLUGIN_CHECKS: dict[str, Callable[[str], bool]] = {"BasicAuthDetector": _credentials}
# detect-secrets applies its patterns line by line; the one that can match across a line
# break (npm's `\s*` after `=`) keeps running on the whole text, as it always has here
_PLUGINS_ACROSS_LINES = {
    r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*": "_authToken=",
}
# a regex detector as the scan runs it: its priority (the first wins an overlap), type,
# pattern, check and group
_Regex = tuple[int, str, re.Pattern[str], Callable[[str], bool] | None, int]
_Found = tuple[int, str, int, int]  # priority, type, start, end
# what a line, or a block of lines, holds: its findings, the priorities of the Join
# patterns whose condition its start and its end meet, and of those that may match
# across a break inside it
_Part = tuple[list[_Found], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass
class Detector:
    """Runs every pattern that cannot match a line break line by line, and remembers
    what it finds in a line: a prompt's sources and instructions come back line for line
    in prompt after prompt, around a different query or section. What differs from one
    scan of the whole text: `^` and `$` now also match at each line's start and end,
    which can only find more (detect-secrets' artifactory patterns, `(?:\\s|^)...(?:\\s|$)`,
    find a token at the start of a line without the line break before it). Lines end at
    "\\n" only: a pattern's `.` or `\\s` could match "\\r" or another `splitlines`
    separator on the whole text too, so it sees them as before."""

    keywords: Sequence[str] = ()
    _per_line: list[_Regex] = field(init=False)
    _joins: list[tuple[_Regex, Join]] = field(init=False)
    _whole: list[tuple[_Regex, str]] = field(init=False)  # with the literal to look for
    _value_plugins: list[tuple[str, Any]] = field(init=False)
    _in_lines: list[_Regex] = field(init=False)  # the per-line and Join patterns
    # matches a line where any of them does: most lines hold nothing, and one search
    # of all of them costs about half of one search each
    _any: re.Pattern[str] | None = field(init=False)
    # findings by text for texts sent again and again (system prompts, the history a
    # chat resends every turn); bounded: at most 1,024 texts of at most 2,048 characters.
    # functools' LRU cache, in C: a prompt looks up each of its lines, a few µs each in
    # a cache written in Python; one that raises keeps nothing
    _memo: Callable[[str], list[Span]] = field(init=False)
    # what a line holds, by line; bounded: 4,096 lines of at most 1,024 characters
    _lines: Callable[[str], _Part] = field(init=False)
    # what a block of lines up to a blank line holds, from its lines: a prompt's source
    # and instruction blocks come back whole, so a prompt looks up a few blocks rather
    # than every line; bounded: 1,024 blocks of at most 4,096 characters
    _blocks: Callable[[str], _Part] = field(init=False)

    def __post_init__(self) -> None:
        rules: list[_Rule] = []
        self._value_plugins = []
        plugins: dict[str, type[Any]] = dict(get_mapping_from_secret_type_to_class())
        for secret_type, cls in plugins.items():
            if cls.__name__ in _SKIPPED_PLUGINS:
                continue
            if issubclass(cls, RegexBasedDetector):
                check = _PLUGIN_CHECKS.get(cls.__name__)
                rules += [(_snake(secret_type), rx, check, 0,
                           _PLUGINS_ACROSS_LINES.get(rx.pattern, LINE)) for rx in cls().denylist]
            else:
                self._value_plugins.append((_snake(secret_type), cls()))
        rules += _RULES
        words = [re.escape(k) for k in self.keywords if k.strip()]
        if words:
            rules.append(("keyword", re.compile(r"\b(?:" + "|".join(words) + r")\b", re.I),
                          None, 0, "" if any("\n" in k for k in self.keywords) else LINE))
        self._per_line, self._joins, self._whole = [], [], []
        for priority, (kind, rx, check, group, where) in enumerate(rules):
            regex = (priority, kind, rx, check, group)
            if where is LINE:
                self._per_line.append(regex)
            elif isinstance(where, Join):
                self._joins.append((regex, where))
            else:
                self._whole.append((regex, where))
        self._values = len(rules)  # the value plugins' priority: they come last
        self._in_lines = self._per_line + [regex for regex, _ in self._joins]
        self._any = any_of([regex[2] for regex in self._in_lines])
        self._memo = lru_cache(maxsize=1024)(self._spans)
        self._lines = lru_cache(maxsize=4096)(self._line)
        self._blocks = lru_cache(maxsize=1024)(self._block)

    def scan(self, texts: Sequence[str]) -> Scan:
        """Findings in each text; any failure of a detector makes the scan an error."""
        try:
            findings: list[Finding] = []
            for index, text in enumerate(texts):
                findings += [Finding(kind, index, start, end)
                             for kind, start, end in self._scan_text(text)]
            return Scan(tuple(findings))
        except Exception:  # fail closed: an unscanned request is a sensitive one
            return Scan((Finding(DETECTOR_ERROR, -1, 0, 0),), error=True)

    def _scan_text(self, text: str) -> list[Span]:
        return self._memo(text) if len(text) <= _MEMO_CHARS else self._spans(text)

    def _spans(self, text: str) -> list[Span]:
        """Every detector's findings, in the order of the detectors' priority (stable, so
        in text order within one), then one finding per stretch of text. A Join pattern
        that may match across a break here runs on the whole text instead: with no match
        across a break, its matches in the whole text are its matches line by line."""
        if not text:
            return []
        found, _, _, across = _joined(text, "\n\n", self._blocks, self._block,
                                      _BLOCK_MEMO_CHARS)
        for regex, literal in self._whole:
            if literal in text:
                found += _matches(regex, text)
        if across:
            found = [one for one in found if one[0] not in across]
            for regex, _ in self._joins:
                if regex[0] in across:
                    found += _matches(regex, text)
        found.sort(key=itemgetter(0))  # by priority
        return _dedupe(found)

    def _block(self, block: str) -> _Part:
        return _joined(block, "\n", self._lines, self._line, _LINE_MEMO_CHARS)

    def _line(self, line: str) -> _Part:
        """What one line holds, which depends on the line alone: the per-line and Join
        patterns' findings and the value plugins' (per `splitlines` line, as
        detect-secrets runs them). A detector that fails raises, and nothing is kept."""
        found: list[_Found] = []
        if self._any is None or self._any.search(line):
            for regex in self._in_lines:
                found += _matches(regex, line)
        offset = 0
        for part in line.splitlines(keepends=True):
            for kind, plugin in self._value_plugins:
                for value in plugin.analyze_string(part):
                    at = part.find(value) if value else -1
                    if at >= 0 and keeps(plugin, value, part, at):
                        found.append((self._values, kind, offset + at, offset + at + len(value)))
            offset += len(part)
        starts = tuple(regex[0] for regex, join in self._joins
                       if join.start is None or join.start.match(line))
        ends = tuple(regex[0] for regex, join in self._joins if join.end.search(line))
        return found, starts, ends, ()


def _joined(text: str, sep: str, memo: Callable[[str], _Part], scan: Callable[[str], _Part],
            memo_chars: int) -> _Part:
    """What the parts of a text cut after each `sep` hold (each ends with its `sep`, so
    with a line's end), put together: findings at their place in the text, and the Join
    patterns that may match across a break between two parts or inside one."""
    found: list[_Found] = []
    across: set[int] = set()
    first: tuple[int, ...] | None = None
    ends: tuple[int, ...] = ()
    parts = text.split(sep)
    offset, last = 0, len(parts) - 1
    for i, part in enumerate(parts):
        if i < last:
            part += sep
        elif not part:
            break
        spans, starts, part_ends, inside = (memo(part) if len(part) <= memo_chars
                                            else scan(part))
        if first is None:
            first = starts
        if ends:
            across.update(p for p in ends if p in starts)
        if inside:
            across.update(inside)
        ends = part_ends
        if spans:
            found += [(p, kind, offset + s, offset + e) for p, kind, s, e in spans]
        offset += len(part)
    return found, first or (), ends, tuple(across)


_SCOPED_FLAGS = {re.I: "i", re.M: "m", re.S: "s", re.X: "x"}
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")  # an escaped "\\" before a digit too: safe


def any_of(patterns: Sequence[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One pattern that matches where any of them does, each with its own flags; None
    when one cannot stand in an alternation (a backreference would point at another
    group, a flag cannot be scoped, a group name repeats), and all must run."""
    if any(_BACKREFERENCE.search(rx.pattern) or rx.flags & ~(re.U | re.I | re.M | re.S | re.X)
           for rx in patterns):
        return None
    scoped = ["(?{}:{})".format("".join(letter for flag, letter in _SCOPED_FLAGS.items()
                                        if rx.flags & flag), rx.pattern) for rx in patterns]
    try:
        return re.compile("|".join(scoped))
    except re.error:
        return None


def _matches(regex: _Regex, text: str) -> list[_Found]:
    priority, kind, rx, check, group = regex
    return [(priority, kind, m.start(group), m.end(group)) for m in rx.finditer(text)
            if check is None or check(m.group(group))]


def _dedupe(found: Iterable[_Found]) -> list[Span]:
    """One finding per stretch of text: the first (most specific) detector wins over
    any later one whose span overlaps it."""
    kept: list[Span] = []
    for _, kind, start, end in found:
        if end > start and not any(start < e and s < end for _, s, e in kept):
            kept.append((kind, start, end))
    return sorted(kept, key=lambda span: span[1])


def redact(text: str, findings: Iterable[Finding], index: int,
           placeholders: dict[str, str]) -> str:
    """Replace the findings in one text with placeholders; `placeholders` collects
    placeholder → original, for `restore()`."""
    parts, last = [], 0
    for finding in sorted((f for f in findings if f.message == index), key=lambda f: f.start):
        token = f"[{finding.type.upper()}_{len(placeholders) + 1}]"
        placeholders[token] = text[finding.start:finding.end]
        parts += [text[last:finding.start], token]
        last = finding.end
    parts.append(text[last:])
    return "".join(parts)


def restore(text: str, placeholders: dict[str, str]) -> str:
    for token, original in placeholders.items():
        text = text.replace(token, original)
    return text


class StreamRestorer:
    """Restores placeholders in a streamed answer: holds back a tail that might be the
    start of a placeholder split across pieces."""

    def __init__(self, placeholders: dict[str, str]) -> None:
        self.placeholders = placeholders
        self.longest = max((len(t) for t in placeholders), default=0)
        self.pending = ""

    def feed(self, piece: str) -> str:
        if not self.placeholders:
            return piece
        text = restore(self.pending + piece, self.placeholders)
        cut = text.rfind("[")
        if cut >= 0 and len(text) - cut < self.longest and "]" not in text[cut:]:
            self.pending, text = text[cut:], text[:cut]
        else:
            self.pending = ""
        return text

    def flush(self) -> str:
        text, self.pending = restore(self.pending, self.placeholders), ""
        return text
