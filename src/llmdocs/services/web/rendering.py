"""Documents as HTML: Markdown rendered, sanitised (a document is model output: it must
run no script), code highlighted, headings anchored for a table of contents; two
versions side by side; a Markdown document in every output format."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import nh3
from cachetools import LRUCache
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from llmdocs.formats import GeneratedDocument, Section

DIFF_CONTEXT = 3  # unchanged lines kept around each change
MAX_HIGHLIGHT = 200_000  # characters of one code block worth highlighting

_formatter = HtmlFormatter(nowrap=True)  # markdown-it wraps it in <pre><code>
# what sanitising keeps: the safe defaults, with classes (highlighting), heading ids (the
# table of contents' anchors) and table alignment
_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "map", "area"}  # no fetching from elsewhere
_ATTRIBUTES = {tag: set(values) for tag, values in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in ("span", "code", "pre", "div"):
    _ATTRIBUTES.setdefault(_tag, set()).add("class")
for _tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
    _ATTRIBUTES.setdefault(_tag, set()).add("id")
_ATTRIBUTES.pop("img", None)
# a code block or table wider than a phone scrolls sideways: keyboard users must reach it
# (axe "scrollable-region-focusable"); the sanitiser sets these over whatever the document
# says, so a document adds no attribute of its own
_SCROLLABLE = {"pre": {"tabindex": "0", "role": "region", "aria-label": "Code block"},
               "table": {"tabindex": "0"}}


def _highlighted(code: str, lang: str, _attrs: str) -> str:
    """Pygments' spans for a fenced block in a language it knows, else nothing (markdown-it
    escapes the block as it is)."""
    if not lang or len(code) > MAX_HIGHLIGHT:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _formatter))


_md = MarkdownIt("commonmark", {"html": True, "highlight": _highlighted}).enable(
    ["table", "strikethrough"])


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Rendered:
    html: Markup
    toc: tuple[Heading, ...]


def _anchor(text: str, taken: set[str]) -> str:
    base = "s-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "section")
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


# rendered documents by content hash: a document is read far more often than written,
# and rendering (parse, highlight, sanitise) costs more than fetching it
_rendered: LRUCache[str, Rendered] = LRUCache(maxsize=128)


def markdown_of(content_hash: str, text: str) -> Rendered:
    """`markdown(text)`, rendered once per content hash while it stays in the cache."""
    found = _rendered.get(content_hash)
    if found is None:
        found = _rendered[content_hash] = markdown(text)
    return found


def _plain(inline: Token) -> str:
    """A heading's text as the reader sees it: `code` without its backticks, links and
    emphasis without their markup, raw HTML left out."""
    parts: list[str] = []
    for child in inline.children or ():
        if child.type in {"text", "code_inline", "image"}:  # an image's content: its alt
            parts.append(child.content)
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
    return " ".join("".join(parts).split())


def markdown(text: str) -> Rendered:
    """`text` as safe HTML: raw HTML in it is sanitised (script and style go with their
    content), and each heading gets an anchor the table of contents links to."""
    tokens = _md.parse(text)
    toc: list[Heading] = []
    taken: set[str] = set()
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            title = _plain(tokens[i + 1])
            anchor = _anchor(title, taken)
            token.attrSet("id", anchor)
            toc.append(Heading(int(token.tag[1]), title, anchor))
    html = _md.renderer.render(tokens, _md.options, {})
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES,
                      clean_content_tags={"script", "style"},
                      set_tag_attribute_values=_SCROLLABLE,
                      url_schemes={"http", "https", "mailto"})
    return Rendered(Markup(clean), tuple(toc))  # noqa: S704  # nosec B704: nh3 sanitised it


# a document that is not Markdown scrolls sideways too: reachable by keyboard, labelled
_CODE = Markup('<pre tabindex="0" role="region" aria-label="Document"><code>{}</code></pre>')


def code(text: str, language: str) -> Markup:
    """A document that is not Markdown (a spec, JSON, text), highlighted as its format."""
    block = _highlighted(text, language, "")
    if not block:
        return _CODE.format(text)
    return _CODE.format(Markup(block))  # noqa: S704  # nosec B704: pygments escapes


@dataclass(frozen=True)
class Line:
    number: int | None
    text: str
    kind: str  # "same", "del", "add", "gap" (unchanged lines left out), "none"


def side_by_side(old: str, new: str) -> list[tuple[Line, Line]]:
    """Rows of two versions next to each other, changes marked, long unchanged stretches
    left out but for `DIFF_CONTEXT` lines around each change."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[tuple[Line, Line]] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(
            DIFF_CONTEXT):
        if rows or group[0][1] > 0:
            skipped = Line(None, "…", "gap")
            rows.append((skipped, skipped))
        for tag, i1, i2, j1, j2 in group:
            left = [Line(i + 1, a[i], "same" if tag == "equal" else "del")
                    for i in range(i1, i2)]
            right = [Line(j + 1, b[j], "same" if tag == "equal" else "add")
                     for j in range(j1, j2)]
            blank = Line(None, "", "none")
            for k in range(max(len(left), len(right))):
                rows.append((left[k] if k < len(left) else blank,
                             right[k] if k < len(right) else blank))
    return rows


def as_generated(title: str, text: str, metadata: dict[str, Any]) -> GeneratedDocument:
    """A Markdown document as the structure every output format renders from: its first
    level-1 heading the title, each later heading a section."""
    sections: list[Section] = []
    summary: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        heading = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading and len(heading.group(1)) == 1 and not sections and not summary:
            title = heading.group(2) or title
        elif heading:
            sections.append(Section(title=heading.group(2) or "Section",
                                    level=max(2, len(heading.group(1)))))
        elif sections:
            sections[-1].body += line + "\n"
        else:
            summary.append(line)
    return GeneratedDocument(title=title, summary="\n".join(summary).strip(),
                             sections=sections, metadata=metadata)
