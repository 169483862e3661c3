"""The security filter: secrets (detect-secrets plus our rules) and personal data in a
request, read as it reads (invisible characters out), failing closed: an unscanned
rest makes a request sensitive. Line-by-line memory keeps repeated prompts cheap.
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from operator import itemgetter
from typing import Any

from llmdocs.services.gateway.rules import LINE, RULES, Join, kept_values, plugin_rules

DETECTOR_ERROR = "detector_error"
UNSCANNED = "unscanned"  # past the characters a scan reads
MAX_SCAN_CHARS = 1 << 20
_MEMO_CHARS = 2048
_LINE_MEMO_CHARS = 1024
_BLOCK_MEMO_CHARS = 4096
Span = tuple[str, int, int]  # detector type, start, end

# left out of what a scan reads: Unicode's format characters (category Cf: soft hyphen,
# zero-width space, joiners, bidirectional controls, word joiner, BOM, tags...), and the
# other characters that show nothing: variation selectors, the combining grapheme
# joiner, Hangul and Khmer fillers
_HIDDEN = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
    "\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
# read as their ASCII ones, one for one: spaces (category Zs), dashes and the minus sign,
# the full-width forms of ASCII
_AS_ASCII = str.maketrans(
    {**dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                     "\u2008\u2009\u200a\u202f\u205f\u3000", " "),
     **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63", "-"),
     **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}})


def readable(text: str) -> tuple[str, list[int]]:
    """The text as a scan reads it, and where each left-out character would have stood
    in it (empty when none was), for `_placed`."""
    if text.isascii():
        return text, []
    text = text.translate(_AS_ASCII)
    hidden = [m.start() for m in _HIDDEN.finditer(text)]
    if not hidden:
        return text, []
    return _HIDDEN.sub("", text), [at - i for i, at in enumerate(hidden)]


def _placed(spans: list[Span], hidden: list[int]) -> list[Span]:
    """Spans in the text as read, placed in the text as sent: past each left-out
    character before them, and over those inside them."""
    if not hidden:
        return spans
    return [(kind, start + bisect_right(hidden, start), end + bisect_right(hidden, end - 1))
            for kind, start, end in spans]


@dataclass(frozen=True)
class Finding:
    type: str
    message: int  # index of the text (for a chat call, the message) the span is in
    start: int
    end: int
    field: str | None = None  # where in the request sent to a provider, if given

    def as_dict(self) -> dict[str, Any]:
        found = {"type": self.type, "message": self.message, "start": self.start,
                 "end": self.end}
        return found if self.field is None else {**found, "field": self.field}


@dataclass(frozen=True)
class Scan:
    findings: tuple[Finding, ...]
    # the detector failed or did not read it all: the request counts as sensitive, and
    # is not redacted (what was not found cannot be)
    error: bool = False

    @property
    def sensitive(self) -> bool:
        return self.error or bool(self.findings)

    @property
    def types(self) -> list[str]:
        return sorted({f.type for f in self.findings})


# a regex detector as the scan runs it: its priority (the first wins an overlap), type,
# pattern, check and group
_Regex = tuple[int, str, re.Pattern[str], Callable[[str], bool] | None, int]
_Found = tuple[int, str, int, int]  # priority, type, start, end
# what a line, or a block of lines, holds: its findings, the priorities of the Join
# patterns whose condition its start and its end meet, and of those that may match
# across a break inside it
_Part = tuple[list[_Found], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


@dataclass
class Detector:
    """Runs line by line every pattern that cannot match a line break, remembering each
    line's findings: prompts repeat their sources and instructions line for line."""

    keywords: Sequence[str] = ()
    # the most characters of a request a scan reads (see the module's docstring)
    max_chars: int = MAX_SCAN_CHARS
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
        rules, self._value_plugins = plugin_rules()
        rules += RULES
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
        """Findings in each text, as it reads (see `readable`), up to `max_chars` in all:
        the rest is one finding of its own, unscanned; any failure of a detector makes
        the scan an error."""
        try:
            findings: list[Finding] = []
            left, unscanned = self.max_chars, False
            for index, text in enumerate(texts):
                read, hidden = readable(text[:left])
                findings += [Finding(kind, index, start, end)
                             for kind, start, end in _placed(self._scan_text(read), hidden)]
                if len(text) > left:
                    findings.append(Finding(UNSCANNED, index, left, len(text)))
                    unscanned = True
                left = max(0, left - len(text))
            return Scan(tuple(findings), error=unscanned)
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
                found += [(self._values, kind, offset + at, offset + at + len(value))
                          for at, value in kept_values(plugin, part)]
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


# a request up to this many characters is scanned on the caller's event loop: about
# 10 ms at worst (text never seen before: bench/detector.py --growth), and a prompt
# whose lines come back, as most do, well under 1 ms; a larger one goes to a worker
INLINE_CHARS = 4096
_worker: Detector | None = None  # in a scanning process: its detector


def _start_worker(keywords: Sequence[str], max_chars: int) -> None:
    global _worker
    _worker = Detector(keywords, max_chars)


def _scan_in_worker(texts: Sequence[str]) -> Scan:
    assert _worker is not None
    return _worker.scan(texts)


class Scanner:
    """Large scans run in worker processes (the regex engine holds the GIL for a whole
    search, so a thread would stop the shared event loop); a dead worker fails closed."""

    def __init__(self, keywords: Sequence[str] = (), max_chars: int = MAX_SCAN_CHARS,
                 processes: int = 2) -> None:
        self.detector = Detector(keywords, max_chars)
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def scan(self, texts: Sequence[str]) -> Scan:
        if sum(map(len, texts)) <= INLINE_CHARS:
            return self.detector.scan(texts)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes, get_context("spawn"), _start_worker,
                (tuple(self.detector.keywords), self.detector.max_chars))
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, _scan_in_worker, list(texts))
        except Exception as exc:  # fail closed: an unscanned request is a sensitive one
            if isinstance(exc, BrokenProcessPool):
                self.close()  # a worker died: the next large scan starts new ones
            return Scan((Finding(DETECTOR_ERROR, -1, 0, 0),), error=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


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
    any later one whose span overlaps it. The spans kept do not overlap, so in the order
    of their starts their ends are in order too: a span overlaps one of them when it
    overlaps the last that starts before it ends."""
    kept: list[Span] = []
    starts: list[int] = []
    ends: list[int] = []
    for _, kind, start, end in found:
        at = bisect_left(starts, end)
        if end > start and not (at and ends[at - 1] > start):
            starts.insert(at, start)
            ends.insert(at, end)
            kept.append((kind, start, end))
    return sorted(kept, key=lambda span: span[1])


def redact(text: str, findings: Iterable[Finding], placeholders: dict[str, str]) -> str:
    """Replace the findings in one text (all of them in it) with placeholders;
    `placeholders` collects placeholder → original, for `restore()`."""
    parts, last = [], 0
    for finding in sorted(findings, key=lambda f: f.start):
        token = f"[{finding.type.upper()}_{len(placeholders) + 1}]"
        placeholders[token] = text[finding.start:finding.end]
        parts += [text[last:finding.start], token]
        last = finding.end
    parts.append(text[last:])
    return "".join(parts)


_PLACEHOLDER = re.compile(r"\[[A-Z0-9_]+_\d+\]")


def restore(text: str, placeholders: dict[str, str]) -> str:
    """The text with each placeholder it holds put back: one pass, however many there
    are (a request redacted in thousands of places, streamed in hundreds of pieces)."""
    if not placeholders:
        return text
    return _PLACEHOLDER.sub(lambda m: placeholders.get(m.group(), m.group()), text)


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
