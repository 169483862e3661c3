"""Output formats of a generated document (json, markdown, txt, csv, pdf, zip), all
rendered from one structure so that they never disagree.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any, NamedTuple

# bandit B406: escapes output, parses nothing
from xml.sax.saxutils import escape  # nosec B406

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, Field
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from llmdocs.provenance import public

FORMATS = ("json", "markdown", "txt", "csv", "pdf", "zip")
_ALIASES = {"md": "markdown", "text": "txt", "plain": "txt", "plaintext": "txt"}
MEDIA_TYPES = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
    "zip": "application/zip",
}
EXTENSIONS = {"json": "json", "markdown": "md", "txt": "txt", "csv": "csv", "pdf": "pdf",
              "zip": "zip"}


class Section(BaseModel):
    title: str
    level: int = Field(default=2, ge=1, le=6)
    body: str = ""  # Markdown


class GeneratedDocument(BaseModel):
    title: str
    summary: str = ""
    sections: list[Section] = Field(default_factory=list)
    table_columns: list[str] = Field(default_factory=list)  # the CSV form of the content
    table_rows: list[list[str]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"# {self.title}"]
        if self.summary:
            parts.append(self.summary.strip())
        for section in self.sections:
            parts.append(f"{'#' * section.level} {section.title}")
            if section.body.strip():
                parts.append(section.body.strip())
        return "\n\n".join(parts) + "\n"


class Rendered(NamedTuple):
    content: bytes
    media_type: str
    filename: str


def normalize_format(name: str) -> str:
    """The canonical name of a format (`md` → `markdown`); ValueError if unknown."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise ValueError(f"unknown format {name!r}; use one of: {', '.join(FORMATS)}")
    return key


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:80] or "document"


def render(
    doc: GeneratedDocument,
    fmt: str,
    *,
    provenance: dict[str, Any] | None = None,
    basename: str | None = None,
) -> Rendered:
    fmt = normalize_format(fmt)
    base = basename or slug(doc.title)
    content = _RENDERERS[fmt](doc, provenance)
    return Rendered(content, MEDIA_TYPES[fmt], f"{base}.{EXTENSIONS[fmt]}")


def _json(doc: GeneratedDocument, provenance: dict[str, Any] | None) -> bytes:
    body = {**doc.model_dump(), "markdown": doc.markdown()}
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


def _markdown(doc: GeneratedDocument, _: dict[str, Any] | None) -> bytes:
    return doc.markdown().encode()


_md = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML stays text


def _txt(doc: GeneratedDocument, _: dict[str, Any] | None) -> bytes:
    """Markdown without its markup: headings underlined, tables as aligned columns."""
    lines: list[str] = []
    tokens = _md.parse(doc.markdown())
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            text = tokens[i + 1].content
            lines += [text, ("=" if token.tag == "h1" else "-") * len(text), ""]
            i += 3
        elif token.type == "table_open":
            rows, i = _table_rows(tokens, i)
            widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
            lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                      .rstrip() for row in rows]
            lines.append("")
        elif token.type in ("fence", "code_block"):
            lines += ["    " + line for line in token.content.rstrip("\n").split("\n")]
            lines.append("")
            i += 1
        elif token.type == "inline":
            if tokens[i - 2].type == "list_item_open":
                lines.append("- " + _plain(token))
            else:
                lines += [_plain(token), ""]
            i += 1
        else:
            if token.type in ("bullet_list_close", "ordered_list_close"):
                lines.append("")
            i += 1
    return ("\n".join(lines).strip() + "\n").encode()


def _plain(inline: Token) -> str:
    return "".join(" " if child.type in ("softbreak", "hardbreak") else child.content
                   for child in inline.children or []
                   if child.type in ("text", "code_inline", "softbreak", "hardbreak"))


def _table_rows(tokens: list[Token], start: int) -> tuple[list[list[str]], int]:
    rows: list[list[str]] = []
    i = start
    while tokens[i].type != "table_close":
        if tokens[i].type == "tr_open":
            rows.append([])
        elif tokens[i].type == "inline":
            rows[-1].append(_plain(tokens[i]))
        i += 1
    return rows, i + 1


def _csv(doc: GeneratedDocument, _: dict[str, Any] | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    if doc.table_columns:
        writer.writerow(doc.table_columns)
        writer.writerows(doc.table_rows)
    else:
        writer.writerow(["section", "level", "text"])
        writer.writerows([s.title, s.level, s.body] for s in doc.sections)
    return out.getvalue().encode()


# --- PDF -------------------------------------------------------------------------------

_styles = getSampleStyleSheet()
_code_style = ParagraphStyle("code", parent=_styles["Code"], fontSize=8, leading=10,
                             backColor=colors.whitesmoke, borderPadding=4)
_cell_style = ParagraphStyle("cell", parent=_styles["BodyText"], fontSize=8, leading=10)


def _inline_markup(inline: Token) -> str:
    """Markdown inline tokens as reportlab's paragraph mini-markup, text escaped."""
    out: list[str] = []
    for child in inline.children or []:
        kind = child.type
        if kind == "text":
            out.append(escape(child.content))
        elif kind == "code_inline":
            out.append(f'<font face="Courier">{escape(child.content)}</font>')
        elif kind in ("softbreak", "hardbreak"):
            out.append(" " if kind == "softbreak" else "<br/>")
        elif kind in ("strong_open", "strong_close"):
            out.append("<b>" if kind.endswith("open") else "</b>")
        elif kind in ("em_open", "em_close"):
            out.append("<i>" if kind.endswith("open") else "</i>")
    return "".join(out)


def _flowables(markdown: str) -> list[Flowable]:
    tokens = _md.parse(markdown)
    story: list[Flowable] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            level = min(int(token.tag[1]), 4)
            story.append(Paragraph(_inline_markup(tokens[i + 1]), _styles[f"Heading{level}"]))
            i += 3
        elif token.type == "table_open":
            start = i
            rows, i = _table_rows(tokens, i)
            cells = [t for t in tokens[start:i] if t.type == "inline"]
            width = len(rows[0])
            grid = [[Paragraph(_inline_markup(cells[r * width + c]), _cell_style)
                     for c in range(width)] for r in range(len(rows))]
            table = Table(grid, repeatRows=1, hAlign="LEFT")
            table.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]))
            story += [table, Spacer(1, 6)]
        elif token.type in ("fence", "code_block"):
            story.append(Preformatted(token.content.rstrip("\n"), _code_style))
            story.append(Spacer(1, 6))
            i += 1
        elif token.type == "inline":
            in_list = tokens[i - 2].type == "list_item_open"
            text = _inline_markup(token)
            story.append(Paragraph(text, _styles["BodyText"], bulletText="•" if in_list
                                   else None))
            i += 1
        else:
            i += 1
    return story


def _pdf(doc: GeneratedDocument, _: dict[str, Any] | None) -> bytes:
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=A4, title=doc.title, author="llmdocs",
                            leftMargin=2 * cm, rightMargin=2 * cm,
                            topMargin=2 * cm, bottomMargin=2 * cm)
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title_page: list[Flowable] = [
        Spacer(1, 6 * cm),
        Paragraph(escape(doc.title), _styles["Title"]),
        Spacer(1, 1 * cm),
        Paragraph(escape(doc.summary), _styles["BodyText"]) if doc.summary else Spacer(1, 1),
        Spacer(1, 1 * cm),
        Paragraph(f"Generated by llmdocs, {made}", _styles["Italic"]),
        PageBreak(),
    ]
    body = doc.model_copy(update={"summary": ""}).markdown()

    def number(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"Page {document.page}")
        canvas.restoreState()

    pdf.build(title_page + _flowables(body), onLaterPages=number)
    return buffer.getvalue()


def _zip(doc: GeneratedDocument, provenance: dict[str, Any] | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for fmt in ("markdown", "json", "txt", "csv", "pdf"):
            archive.writestr(f"document.{EXTENSIONS[fmt]}", _RENDERERS[fmt](doc, provenance))
        # the file goes to anyone who may read the document: not who asked, nor in which
        # session
        archive.writestr("provenance.json",
                         json.dumps(public(provenance) or {}, indent=2, default=str))
    return buffer.getvalue()


_RENDERERS = {"json": _json, "markdown": _markdown, "txt": _txt, "csv": _csv, "pdf": _pdf,
              "zip": _zip}
