"""The security filter's patterns and detect-secrets' plugins, each linear in the text it
scans (bounded, possessive or anchored quantifiers): Python's regex engine backtracks,
and tests/services/gateway/test_gateway_linear.py fails a pattern that is not linear.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters.heuristic import is_likely_id_string, is_sequential_string
from detect_secrets.plugins import keyword
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import (
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.keyword import KeywordDetector

_SKIPPED_PLUGINS = frozenset({"IPPublicDetector"})  # an address is not a secret
Check = Callable[[str], bool]


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
_NAME_OR_REFERENCE = re.compile(r"[a-z]++(?:[_.][a-z]++)++|[A-Z]++(?:[_.][A-Z]++)++|"
                                r"[\w.-]+[\[(].*")


def _literal(value: str) -> bool:
    """Whether an assigned value looks like a literal one (a password, a key) rather
    than a placeholder, a type or a name: a schema (`password: {type: string}`, in
    every OpenAPI spec with a login) or a template is no secret."""
    word = value.rstrip(".)]}>")
    return not (value[0] in _PLACEHOLDER_START or value.endswith(":") or len(set(word)) < 2
                or _NOT_VALUE.fullmatch(word) or _NAME_OR_REFERENCE.fullmatch(word))


_URL_PASSWORD = re.compile(r"://[^:]*+:([^@]*+)@")


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
# no word here holds another but at its start, so the first match on a line is also the
# one that ends first: a value has a secret's name before it when that match ends first
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|bearer|private|"
                          r"session|cookie", re.I)
_SEPARATORS = ",;{([&"  # what ends the value before a value's own key
# the longest key judged by detect-secrets' id heuristic: the key runs from the last
# separator to the value, which on a line without one is the whole line before it, and
# judging each value's whole line before it costs a line of many values its square; a
# longer key is no id's (the value stays found)
_KEY_CHARS = 200


@lru_cache(maxsize=8)
def _first_secret_name(line: str) -> int:
    """Where the first secret's name on a line ends (past the line's end if none): a
    line is asked once, not once per value on it."""
    found = _SECRET_NAME.search(line)
    return len(line) + 1 if found is None else found.end()


def is_a_finding(plugin: Any, value: str, line: str, at: int) -> bool:
    """Whether a detect-secrets value plugin's candidate stays a finding: its entropy limit
    and its filters for sequential strings, ids and hashes, as detect-secrets keeps them,
    so that a prompt's ids and hashes are not taken for secrets."""
    if isinstance(plugin, HighEntropyStringsPlugin):
        if (plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit
                or is_sequential_string(value)):
            return False
        if _first_secret_name(line) <= at:
            return True
        window = max(0, at - _KEY_CHARS)
        start = max(line.rfind(separator, window, at) for separator in _SEPARATORS) + 1
        key = line[start:at].lstrip(" \t\"'")
        known = start > 0 or window == 0  # else the key is longer than _KEY_CHARS
        likely_id = known and is_likely_id_string(value, key + value, plugin)
        return not (likely_id or (isinstance(plugin, HexHighEntropyString)
                                  and len(value) in _HASH_LENGTHS))
    if isinstance(plugin, KeywordDetector):
        return _literal(value)
    return True


def kept_values(plugin: Any, line: str) -> Iterator[tuple[int, str]]:
    """Where each value a value plugin keeps stands in one `splitlines` line, and the
    value: a value is looked for after the one before it (the plugins yield them in the
    order they stand, the keyword detector a few out of it), so a line of many values
    is read once, and a value that stands twice is found twice."""
    after = 0
    for value in plugin.analyze_string(line):
        if not value:
            continue
        at = line.find(value, after)
        if at < 0:
            at = line.find(value)
        if at >= 0 and is_a_finding(plugin, value, line, at):
            after = at + len(value)
            yield at, value


@dataclass(frozen=True)
class Join:
    """For a pattern that can match across a line break, what the lines around a break
    must end and start with for a match to run across it, so the pattern runs on the
    whole text only when some break allows it, and line by line otherwise."""

    # line by line is then exact: such a pattern never ends a match with the break and
    # looks no further than it
    end: re.Pattern[str]  # searched in the line, which ends with its "\n"
    start: re.Pattern[str] | None = None  # matched at the next line's start; None: any


# a run of 4 or more dot-separated digit groups, from the run's first digit (one that
# does not match there matches nowhere in the run)
_DOTTED = re.compile(r"(?<!\d)\d++(?:\.\d++){3,}")
_ASSIGNED_NAME = (r"\b(?:pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|api[_-]?key|"
                  r"access[_-]?token|auth[_-]?token)\b[\"']?")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?"
# a date written as people and programs write one: 1985-03-14, 14/03/1985, 3.14.85,
# 14 March 1985, 14th of March 1985, March 14, 1985
_DATE = (r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/. ]\d{1,2}[-/. ]\d{2,4}|"
         r"\d{1,2}(?:st|nd|rd|th)?(?:[ -]|[ \t]of[ \t])" + _MONTH + r"[ ,-]{1,2}\d{2,4}|"
         + _MONTH + r"[ \t]\d{1,2}(?:st|nd|rd|th)?,?[ \t]\d{2,4})(?!\d)")
# (type, pattern, check on the matched group, which group is the secret, where it runs):
# LINE for a pattern that cannot match a line break ("\n"), run line by line and
# remembered by line; a Join for one that can, but only where the lines around the break
# allow it; otherwise a literal that every match contains, and the pattern runs on the
# whole text when the text holds that literal
LINE = None
Rule = tuple[str, re.Pattern[str], Check | None, int, str | Join | None]
RULES: list[Rule] = [
    ("private_key", re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]*?"
                               r"(?:-----END [A-Z ]{0,40}PRIVATE KEY-----|$)"), None, 0,
     "-----BEGIN "),  # the whole block, to its END line
    ("connection_string", re.compile(
        r"\b[a-z][a-z0-9+.-]{0,31}+://[^\s:/@]{1,256}+:[^\s@/]{1,256}+@[^\s'\"]{1,2048}",
        re.I), _credentials, 0, LINE),
    # across a break in the \s* before or after the : or =, so the line before it ends
    # in the name, or the name and the : or =; an unquoted word that more words follow
    # on its line is prose ("Password: Must be ..."), or a type that a union or default
    # follows (`api_key: SecretStr | None = None`); the lookahead stops at the line end
    ("password_assignment", re.compile(
        _ASSIGNED_NAME + r"\s*+[:=]\s*+(?:[\"']|(?![A-Za-z]++[ \t]++[A-Za-z|=]))"
        r"([^\s\"',;]{4,})", re.I), _literal, 1,
     Join(re.compile(_ASSIGNED_NAME + r"\s*+(?:[:=]\s*+)?\Z", re.I))),
    # a URL's `user:password@` is matched whole, first, and dropped by the check: the
    # password before a dotted host is no mailbox (`postgres://USER:PASSWORD@db.internal`)
    ("email", re.compile(r"://[^\s:/@]{0,256}+:[^\s@/]{0,256}+@|"
                         r"\b[A-Za-z0-9._%+-]{1,64}+@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,63}\b"),
     lambda m: "://" not in m, 0, LINE),
    ("credit_card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
     lambda m: 13 <= len(d := re.sub(r"\D", "", m)) <= 19 and _luhn(d), 0, LINE),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban_ok, 0, LINE),
    # US social security number, its groups apart by "-", " " or "." (078 05 1120)
    ("national_id", re.compile(r"\b(?!000|666|9\d\d)\d{3}[-. ](?!00)\d{2}[-. ](?!0000)\d{4}\b"),
     None, 0, LINE),
    ("national_id", re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2}"
                               r" ?[A-D]\b"), None, 0, LINE),  # UK national insurance number
    # a date next to a word for birth: a date of birth is personal data, a date is not
    ("date_of_birth", re.compile(
        r"\b(?:dob|d\.o\.b|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthday|"
        r"born(?:[ \t]{1,3}on)?)\b\.?[\"']?[ \t]{0,3}[:=]?[ \t]{0,3}[\"']?(" + _DATE + ")",
        re.I), None, 1, LINE),
    # across a break that is one [\s.-] between digits, or after a ")" or before a "(";
    # a run of 4 or more dot-separated digit groups (an IPv4 address such as
    # 169.254.169.254, a version 1.22.333.4444) is matched whole from its first digit,
    # first, and dropped by the check, so no phone number is found inside it, whatever
    # follows it (a netmask, a port: `10.1.123.234 255.255.255.0`)
    ("phone", re.compile(_DOTTED.pattern + r"|"
                         r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?"
                         r"\d{2,4}[\s.-]\d{3,4}[\s.-]?\d{3,4}(?![\w-])|\+\d{8,15}\b"),
     lambda m: not _DOTTED.fullmatch(m), 0, Join(re.compile(r"[\d)]\n\Z"), re.compile(r"[\d(]"))),
    # from a run's first character: a run too short to match from there matches nowhere
    ("high_entropy", re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{24,}={0,2}"),
     _high_entropy, 0, LINE),
]
# a check on the whole match of each pattern of a regex plugin, by the plugin's class
_PLUGIN_CHECKS: dict[str, Check] = {"BasicAuthDetector": _credentials}
# detect-secrets applies its patterns line by line; the one that can match across a line
# break (npm's `\s*` after `=`) keeps running on the whole text, as it always has here
_NPM = r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*"
_PLUGINS_ACROSS_LINES = {_NPM: "_authToken="}

_OPENAI_KEY = re.compile(r"[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}")
# detect-secrets' patterns that are not linear, each as (pattern, group that is the
# original's whole match, check on that group) that finds the same: a run that only the
# first attempt in it can match is taken whole by that attempt, so that no later one
# starts inside it, and the check says whether the original matches there; an npm token
# is looked for from the first "//" of a line (`^` of each line: they run with re.M),
# which reaches every later one
_LINEAR: dict[str, tuple[str, int, Check | None]] = {
    # a JWT's first part runs to its ".": from each "eyJ" of "eyJeyJ..." to its end
    r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?": (
        r"eyJ[A-Za-z0-9-_=]++(?:\.[A-Za-z0-9-_=]++\.?)?", 0, lambda m: "." in m),
    # an OpenAI key's prefix runs to its marker: from each "sk-" of "sk-sk-..." to its end
    r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}": (
        r"sk-[A-Za-z0-9-_]*+", 0, lambda m: _OPENAI_KEY.search(m, 3) is not None),
    _NPM: (r"^(?:[^/\n]|/(?!/))*+(" + _NPM + ")", 1, None),
}
# Cloudant's, IBM's and SoftLayer's `name = value`: spaces, an operator or spaces,
# spaces: a run of spaces that no value follows is tried split three ways (its cube)
_SPACES = ("(?: *)(?:=|:|:=|=>| +|::)(?: *)", "(?: *+(?:=|:|:=|=>|::) *+| ++)")


def _linear(rx: re.Pattern[str], check: Check | None) -> tuple[re.Pattern[str], int,
                                                                Check | None]:
    """A plugin's pattern as it runs here: linear, with the group to report."""
    if rx.pattern in _LINEAR:
        pattern, group, own = _LINEAR[rx.pattern]  # none of them has a check of ours
        return re.compile(pattern, rx.flags | re.M), group, own or check
    if _SPACES[0] in rx.pattern:
        return re.compile(rx.pattern.replace(*_SPACES), rx.flags), 0, check
    return rx, 0, check


class _LinearKeywords(KeywordDetector):
    """detect-secrets' keyword detector with its patterns linear: theirs try
    `(api_?key|...)\\w*` from every such word of "api_keyapi_key..." to the run's end."""

    # tried once from the run's start, to its first such word and its end (an atomic
    # group): a later word in the run ends where the first does, so it can match only
    # if the first does
    _PATTERNS = {
        re.compile(rx.pattern.replace(
            keyword.DENYLIST_REGEX,
            r"(?<!\w)(?>\w*?" + keyword.DENYLIST_REGEX.removesuffix(r"\w*") + r"\w*+)", 1)
            if rx.pattern.startswith(keyword.DENYLIST_REGEX) else rx.pattern, rx.flags): group
        for rx, group in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items()}

    def analyze_string(self, string: str,
                       denylist_regex_to_group: dict[re.Pattern[str], int] | None = None
                       ) -> Generator[str, None, None]:
        yield from super().analyze_string(string, denylist_regex_to_group or self._PATTERNS)


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def plugin_rules() -> tuple[list[Rule], list[tuple[str, Any]]]:
    """detect-secrets' regex plugins as rules, first (their patterns linear), and its
    value plugins (high-entropy strings, keywords) with the types they report."""
    rules: list[Rule] = []
    values: list[tuple[str, Any]] = []
    plugins: dict[str, type[Any]] = dict(get_mapping_from_secret_type_to_class())
    for secret_type, cls in plugins.items():
        if cls.__name__ in _SKIPPED_PLUGINS:
            continue
        if issubclass(cls, RegexBasedDetector):
            for original in cls().denylist:
                rx, group, check = _linear(original, _PLUGIN_CHECKS.get(cls.__name__))
                rules.append((_snake(secret_type), rx, check, group,
                              _PLUGINS_ACROSS_LINES.get(original.pattern, LINE)))
        else:
            values.append((_snake(secret_type),
                           _LinearKeywords() if cls is KeywordDetector else cls()))
    return rules, values
