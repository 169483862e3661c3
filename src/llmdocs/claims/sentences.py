"""Model text cut into sentences in one pass: abbreviations, version numbers, URLs and
backticked code do not end a sentence; Markdown blocks stay whole so they can be judged."""

from __future__ import annotations

MAX_TEXT = 20_000  # characters of one text that are read at all
ABBREVIATIONS = frozenset({"e.g", "i.e", "eg", "ie", "etc", "vs", "cf", "approx", "incl",
                           "no", "fig", "resp", "mr", "mrs", "dr", "st"})
_ENDS = ".!?"
_CLOSERS = "\"')]*_"
_BLOCK_STARTS = ("#", "|", "```", "~~~", ">")


def split_sentences(text: str) -> list[str]:
    """The sentences of a paragraph; a tail without an end mark is kept as it is (so a
    text cut off mid-word shows as such)."""
    text = " ".join(text[:MAX_TEXT].split())
    sentences: list[str] = []
    start, in_code = 0, False
    for i, char in enumerate(text):
        if char == "`":
            in_code = not in_code
        if in_code or char not in _ENDS:
            continue
        end = i + 1
        while end < len(text) and text[end] in _CLOSERS + _ENDS:
            end += 1
        if end < len(text) and text[end] != " ":
            continue  # 1.2.0, example.com, a.b: not an end
        if char == "." and _abbreviation(text, start, i, end):
            continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _abbreviation(text: str, start: int, dot: int, after: int) -> bool:
    """Whether the dot at `dot` closes an abbreviation ("e.g.") rather than a sentence;
    "etc." ends one when a capital follows."""
    word_start = text.rfind(" ", start, dot) + 1
    word = text[word_start:dot].lower().lstrip("(\"'")
    if word not in ABBREVIATIONS:
        return False
    following = text[after + 1:after + 2]
    return not (word == "etc" and following[:1].isupper())


def prose_units(markdown: str) -> list[str]:
    """The units a model answer is judged by: each sentence of its lines and list items
    (markers stripped), and each heading, table row or code block whole. A line break
    ends a sentence: a model does not wrap its lines, and a line without an end mark
    ("The endpoint is:") is a fragment."""
    units: list[str] = []
    fence: list[str] | None = None
    for raw in markdown[:MAX_TEXT].splitlines():
        line = raw.strip()
        if fence is not None:
            fence.append(line)
            if line.startswith(("```", "~~~")):
                units.append("\n".join(fence))
                fence = None
        elif line.startswith(("```", "~~~")):
            fence = [line]
        elif line.startswith(_BLOCK_STARTS):
            units.append(line)
        elif line:
            item = list_item(line)
            units.extend(split_sentences(line if item is None else item))
    if fence is not None:
        units.append("\n".join(fence))
    return units


def list_item(line: str) -> str | None:
    """A list item's text without its marker ("- ", "* ", "3. "), or None."""
    if line[:2] in ("- ", "* ", "+ ", "• "):
        return line[2:].strip()
    digits = len(line) - len(line.lstrip("0123456789"))
    if 0 < digits <= 3 and line[digits:digits + 2] in (". ", ") "):
        return line[digits + 2:].strip()
    return None
