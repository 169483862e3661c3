"""An independent check of a document's prose against its spec, for tests and benches.

It shares no code with the generator's prose filter on purpose: a second reading,
written differently (plain string scans over whitespace-split words), so that one's
blind spot is not the other's.

What counts as prose: the text outside fenced code, and outside the lines a reference
is made of: headings (`#`), tables (`|`), HTML lines and blocks (`<aside>...</aside>`,
inline tags), quotes (`>`, widdershins' labels), rules, lines ending in a bold value
(`Status Code **200**`), lines of one word (`xor`), label lines (`Request body
(application/json, required): ...`), and list items or lines that open with a code
span, a bold label or an italic line (- `limit` ..., `**Base URL:** ...`,
`*Find pet by ID*`).
What is left is paragraphs and list items that open with a plain word: sentences
someone wrote. A sentence copied verbatim from the spec is the spec's own and is not
held against the document.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The seeded prompts' own instructions (services/promptstore/seeds): seen in a
# document, they were echoed from the prompt.
PROMPT_PHRASES = (
    "the only facts you may use", "sources (the only", "document request:",
    "outline of the whole document", "section to write now", "answer with the markdown",
    "use only facts found in the sources", "never invent endpoints",
    "start with the section heading", "write clear, plain english",
    "do not repeat other sections", "current draft:", "answer with the complete revised",
    "planned outline:", "you write one section", "you review a technical document",
    "you plan technical", "be strict and specific", "answer with the list only",
    "answer with the summary only", "keep everything else exactly", "if the sources do not say",
    "technical document", "section of the outline", "a section written",
    "<section title>", "{{", "}}", "rules:",
)
# Talk to the reader about the document or the request, not about the API.
READER_TALK = (
    "please provide", "your document", "your request", "i cannot", "i can't", "i am unable",
    "i'm sorry", "as an ai", "language model", "here is the", "here's the", "here is a",
    "let me know",
    "the document is incomplete", "this document will", "this section will",
    "the provided sources", "the sources provided", "based on the sources", "the outline",
    "i will ", "i'll ",
)
DANGLING = frozenset({"the", "a", "an", "to", "of", "and", "or", "with", "for", "in", "on",
                      "is", "are", "by", "from", "as", "at", "that"})
ENDINGS = (".", "!", "?", ":", ")", "`", '"')
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
TLDS = frozenset({"com", "org", "net", "io", "dev", "gov", "edu", "co", "us", "uk", "de",
                  "app", "cloud", "ai", "local", "internal"})
STRIP = "()[],;:\"'*_!?<>"
HTML_BLOCKS = ("aside", "div", "details", "table")
PHRASE = 6  # words in a phrase that may not come back
INNER_PHRASE = 4  # words in a phrase that may not come back within one sentence


@dataclass(frozen=True)
class Defect:
    sentence: str
    reason: str


@dataclass
class Paragraph:
    text: str
    listed: bool  # a list item: it may end without a full stop


def prose(markdown: str) -> list[Paragraph]:
    """The paragraphs and list items someone wrote (see the module's docstring)."""
    found: list[Paragraph] = []
    current: list[str] = []
    fenced = False

    def close() -> None:
        if current:
            found.append(Paragraph(" ".join(current), False))
            current.clear()

    html_block = ""
    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            close()
            continue
        if html_block:
            html_block = "" if f"</{html_block}>" in line else html_block
            continue
        block = next((tag for tag in HTML_BLOCKS if line.startswith(f"<{tag}")), "")
        if block and f"</{block}>" not in line:
            html_block = block
        if fenced or block or not line or line.endswith("**") or has_tag(line) or \
                line.startswith(("#", "|", "<", ">", "---", "***", "===")):
            close()
            continue
        body, listed = item_text(line)
        if body.startswith(("`", "**", "[", "!", "*", "_")) or " " not in body or \
                is_label(body):
            close()
            continue
        if listed:
            close()
            found.append(Paragraph(body, True))
        else:
            current.append(body)
    close()
    return found


def has_tag(line: str) -> bool:
    """Whether the line holds inline HTML (`<a href=...>`, `</a>`)."""
    at = line.find("<")
    while at >= 0:
        after = line[at + 1: at + 2]
        if after.isalpha() or after == "/":
            return True
        at = line.find("<", at + 1)
    return False


def is_label(line: str) -> bool:
    """A reference's label line: a few words, a parenthesis of single words, a colon
    (`Request body (application/json, required): ...`)."""
    head, paren, rest = line.partition(" (")
    inside, closed, _ = f"{rest} ".partition("): ")
    return bool(paren and closed) and len(head.split()) <= 3 and \
        all(len(item.split()) == 1 for item in inside.split(","))


def item_text(line: str) -> tuple[str, bool]:
    """A list item's text without its marker (`- `, `* `, `3. `), and whether it was one."""
    if line[:2] in ("- ", "* ", "+ "):
        return line[2:].strip(), True
    number = line.split(" ", 1)[0]
    if len(number) > 1 and number[-1] in ".)" and number[:-1].isdigit():
        return line[len(number):].strip(), True
    return line, False


def sentences(text: str) -> list[str]:
    """Split at . ! ? followed by a space (a dot inside a name or URL does not end one)."""
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            out.append(text[start:i + 1].strip())
            start = i + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def words(sentence: str) -> list[str]:
    return [w.strip(STRIP).rstrip(".") for w in sentence.replace("`", " ").split()]


class Support:
    """What the spec says, to check a word against: its whole text, numbers, paths,
    servers."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.text = json.dumps(spec, ensure_ascii=False, default=str)
        self.lower = self.text.lower()
        self.prose = " \n ".join(" ".join(s.lower().split()) for s in strings(spec))
        self.names = set(identifiers(self.lower))
        self.paths = [str(p) for p in spec.get("paths") or {}]
        self.servers = [str(s.get("url", "")) for s in spec.get("servers") or []
                        if isinstance(s, dict)]
        if spec.get("host"):
            self.servers += [f"{scheme}://{spec['host']}{spec.get('basePath', '')}"
                             for scheme in spec.get("schemes") or ["https"]]
        digits, number = set(), ""
        for ch in self.text + " ":
            if ch.isdigit() or (ch == "." and number):
                number += ch
            elif number:
                digits.add(number.rstrip("."))
                number = ""
        # counts a document may state: operations, paths, groups (by first tag), the
        # operations of each group, the spec's declared tags
        paths = [item for item in (spec.get("paths") or {}).values() if isinstance(item, dict)]
        groups: dict[str, int] = {}
        for item in paths:
            for method, op in item.items():
                if method.upper() in METHODS and isinstance(op, dict):
                    tag = (op.get("tags") or ["default"])[0]
                    groups[str(tag)] = groups.get(str(tag), 0) + 1
        counts = {sum(groups.values()), len(paths), len(groups), *groups.values(),
                  len(spec.get("tags") or [])}
        self.numbers = digits | {str(n) for n in counts}

    def said(self, lower: str) -> bool:
        """Whether a (lower-case) sentence is one of the spec's own, whole: a piece cut
        from the middle of one is not."""
        whole = lower.endswith((".", "!", "?")) or f"{lower} \n " in f"{self.prose} \n "
        return whole and lower.count("`") % 2 == 0 and lower.rstrip(".") in self.prose

    def path_known(self, path: str) -> bool:
        """A spec path, a path template filled in, or the start of one."""
        asked = path.rstrip("/").split("/")
        for known in self.paths:
            parts = known.rstrip("/").split("/")
            if len(asked) <= len(parts) and all(
                    a == k or (k.startswith("{") and k.endswith("}")) or
                    (a.startswith("{") and a.endswith("}"))
                    for a, k in zip(asked, parts, strict=False)):
                return True
        return any(path.rstrip("/") in s for s in self.servers)

    def url_known(self, url: str) -> bool:
        url = url.rstrip("/.")
        if url in self.text:
            return True
        return any(url.startswith(s.rstrip("/")) and self.path_known(url[len(s.rstrip("/")):]
                                                                      or "/")
                   for s in self.servers if s)

    def claims(self, sentence: str) -> Iterator[tuple[str, bool]]:
        """Each checkable word of a sentence (URL, host, path, number, name) and
        whether the spec supports it."""
        pieces = sentence.split("`")
        for n, piece in enumerate(pieces):
            coded = n % 2 == 1 and n < len(pieces) - 1
            for raw in piece.replace("](", " ").replace("[", " ").split():
                word = raw.strip(STRIP).rstrip(".,")
                if word:
                    yield from self.claim(word, coded)

    def claim(self, word: str, coded: bool) -> Iterator[tuple[str, bool]]:
        if word in METHODS:
            return  # a method is checked with its path, which carries the claim
        if word.startswith(("http://", "https://")):
            yield f"URL {word}", self.url_known(word)
        elif word.startswith("/") and len(word) > 1:
            yield f"path {word}", self.path_known(word.split("?", 1)[0]) or word in self.text
        elif is_host(word):
            yield f"host {word}", word.lower() in self.lower
        elif is_number(word):
            yield f"number {word}", word.rstrip("%").replace(",", "") in self.numbers
        elif coded or is_name(word):
            yield f"name {word}", all(
                part in self.names for part in identifiers(word.lower()))


def identifiers(text: str) -> Iterator[str]:
    """The runs of letters, digits, `_` and `-` in a text (a name's parts)."""
    current = ""
    for ch in text + " ":
        if ch.isalnum() or ch in "_-":
            current += ch
        elif current:
            yield current
            current = ""


def strings(node: Any) -> Iterator[str]:
    """Every string the spec holds, keys and values."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack += [*map(str, item), *item.values()]
        elif isinstance(item, list):
            stack += item


def is_host(word: str) -> bool:
    """A dotted host name or an IP address (with a port or a stray suffix)."""
    labels = word.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return False
    if all(c.isdigit() or c in ".:-" for c in word):
        return len(labels) >= 4  # 127.0.0.1, 127.0.0.1-6201
    tld = labels[-1].split(":", 1)[0].lower()
    return tld in TLDS and all(c.isalnum() or c in ".-:" for c in word)


def is_number(word: str) -> bool:
    core = word.rstrip("%").replace(",", "")
    return bool(core) and core.replace(".", "", 1).isdigit()


def is_name(word: str) -> bool:
    """An identifier as code writes it: snake_case or camelCase."""
    if not word.replace("_", "").isalnum() or word.isdigit():
        return False
    return "_" in word.strip("_") or (any(c.isupper() for c in word[1:]) and word[0].islower())


def check(markdown: str, spec: dict[str, Any]) -> list[Defect]:
    """Every defective sentence of the document's prose, with why."""
    support = Support(spec)
    headings = {line.lstrip("#").strip().strip("`").lower() for line in markdown.splitlines()
                if line.startswith("#")}
    seen: set[str] = set()
    phrases: set[tuple[str, ...]] = set()
    found = [Defect(line, f"doubled word in a heading: {word}")
             for line in markdown.splitlines() if line.startswith("#")
             and (word := doubled_word(line))]
    for paragraph in prose(markdown):
        split = sentences(paragraph.text)
        for n, sentence in enumerate(split):
            last = n == len(split) - 1
            reason = defect_of(sentence, support, headings, seen, phrases,
                               last and not paragraph.listed, last)
            if reason:
                found.append(Defect(sentence, reason))
    return found


def defect_of(sentence: str, support: Support, headings: set[str], seen: set[str],
              phrases: set[tuple[str, ...]], must_end: bool, last: bool) -> str | None:
    lower = " ".join(sentence.lower().split())
    if support.said(lower):
        return None  # the spec's own words
    for phrase in PROMPT_PHRASES:
        if phrase in lower:
            return f"prompt echo: {phrase}"
    for phrase in READER_TALK:
        if phrase in lower or lower.startswith(phrase.strip()):
            return f"talks to the reader: {phrase.strip()}"
    for claim, supported in support.claims(sentence):
        if not supported:
            return f"unsupported {claim}"
    plain = [w.lower() for w in words(sentence) if w]
    if word := doubled_word(sentence):
        return f"doubled word: {word}"
    for size in range(2, PHRASE + 1):
        for i in range(len(plain) - 2 * size + 1):
            if plain[i:i + size] == plain[i + size:i + 2 * size]:
                return f"doubled phrase: {' '.join(plain[i:i + size])}"
    inner = [tuple(plain[i:i + INNER_PHRASE]) for i in range(len(plain) - INNER_PHRASE + 1)]
    if len(set(inner)) < len(inner):
        return "repeated phrase within the sentence"
    if sentence.count(":") >= 3:
        return "headings or labels only"
    if sentence.count("`") % 2:
        return "cut off"
    if last and ((plain[-1:] and plain[-1] in DANGLING) or
                 (must_end and not sentence.rstrip().endswith(ENDINGS))):
        return "cut off"
    rest, named = lower.rstrip(".:"), 0
    for title in sorted(headings, key=len, reverse=True):
        if title and title in rest:
            rest, named = rest.replace(title, " "), named + 1
    if named >= 2 and len([w for w in rest.split() if w.strip(STRIP + ".")]) < 3:
        return "headings or labels only"
    if lower in seen:
        return "repeated sentence"
    seen.add(lower)
    again = None
    for i in range(len(plain) - PHRASE + 1):
        gram = tuple(plain[i:i + PHRASE])
        if again is None and gram in phrases and " ".join(gram) not in support.prose:
            again = gram
        phrases.add(gram)
    return f"repeated phrase: {' '.join(again)}" if again else None


def doubled_word(text: str) -> str | None:
    """The first word written twice in a row ("API API"), if any."""
    plain = [w.lower() for w in words(text) if w]
    return next((a for a, b in itertools.pairwise(plain) if a == b and a.isalpha()), None)


def truthfulness(markdown: str, spec: dict[str, Any]) -> tuple[int, int]:
    """Supported claims and claims: every checkable word of the prose, and every
    `METHOD /path` the document names anywhere outside code."""
    support = Support(spec)
    verdicts = [ok for p in prose(markdown) for s in sentences(p.text)
                for _, ok in support.claims(s)]
    fenced = False
    for line in markdown.splitlines():
        if line.strip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        tokens = [] if fenced else line.replace("`", " ").replace("|", " ").split()
        for method, path in itertools.pairwise(tokens):
            if method in METHODS and path.startswith("/"):
                verdicts.append(path.strip("()[],;:.") in support.paths)
    return sum(verdicts), len(verdicts)
