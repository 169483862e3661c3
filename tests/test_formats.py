"""Every output format rendered from one document structure."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from pypdf import PdfReader

from llmdocs.formats import (
    FORMATS,
    GeneratedDocument,
    Section,
    normalize_format,
    render,
)

ENDPOINTS = "| Method | Path | Summary |\n|---|---|---|\n| GET | /users | List users |\n" \
    "| POST | /users | Create a user |\n| DELETE | /users/{id} | Delete a user & data |"


@pytest.fixture
def doc() -> GeneratedDocument:
    long_text = " ".join(f"Sentence {i} about **users** and `ids`." for i in range(400))
    return GeneratedDocument(
        title="User Service API",
        summary="How to manage users.",
        sections=[
            Section(title="Endpoints", body=ENDPOINTS),
            Section(title="Create a user", level=3,
                    body="Send a JSON body:\n\n```json\n{\"name\": \"Ada\"}\n```\n\n"
                         "- name is required\n- email is optional"),
            Section(title="Details <script>", body=long_text),
        ],
        table_columns=["method", "path", "summary"],
        table_rows=[["GET", "/users", "List users"], ["POST", "/users", "Create, a user"]],
    )


def test_markdown_is_the_canonical_text(doc: GeneratedDocument) -> None:
    text = render(doc, "md").content.decode()
    assert text.startswith("# User Service API\n\nHow to manage users.")
    assert "## Endpoints" in text and "### Create a user" in text
    assert "| DELETE | /users/{id} |" in text


def test_json_carries_structure_and_markdown(doc: GeneratedDocument) -> None:
    rendered = render(doc, "json")
    body = json.loads(rendered.content)
    assert rendered.media_type == "application/json"
    assert body["sections"][0]["title"] == "Endpoints"
    assert body["markdown"] == doc.markdown()


def test_txt_drops_markup_keeps_content(doc: GeneratedDocument) -> None:
    text = render(doc, "txt").content.decode()
    assert "#" not in text.split("{")[0] and "**" not in text and "|" not in text
    assert "User Service API\n================" in text
    assert "DELETE  /users/{id}  Delete a user & data" in text
    assert '    {"name": "Ada"}' in text and "- name is required" in text


def test_csv_is_the_table_form(doc: GeneratedDocument) -> None:
    rows = list(csv.reader(io.StringIO(render(doc, "csv").content.decode())))
    assert rows == [["method", "path", "summary"], ["GET", "/users", "List users"],
                    ["POST", "/users", "Create, a user"]]
    sections_only = doc.model_copy(update={"table_columns": [], "table_rows": []})
    rows = list(csv.reader(io.StringIO(render(sections_only, "csv").content.decode())))
    assert rows[0] == ["section", "level", "text"] and rows[2][0] == "Create a user"


def test_pdf_has_title_page_headings_table_code_and_page_numbers(
    doc: GeneratedDocument,
) -> None:
    rendered = render(doc, "pdf")
    assert rendered.content.startswith(b"%PDF") and rendered.filename == "user-service-api.pdf"
    reader = PdfReader(io.BytesIO(rendered.content))
    assert len(reader.pages) >= 3
    first = reader.pages[0].extract_text()
    assert "User Service API" in first and "Page" not in first
    rest = "\n".join(page.extract_text() for page in reader.pages[1:])
    for expected in ("Endpoints", "/users/{id}", "Delete a user & data", '{"name": "Ada"}',
                     "Details <script>", "Page 2", "Sentence 399"):
        assert expected in rest, expected


def test_zip_holds_every_format_and_provenance(doc: GeneratedDocument) -> None:
    archive = zipfile.ZipFile(io.BytesIO(render(doc, "zip", provenance={"run": "r1"}).content))
    assert sorted(archive.namelist()) == sorted(
        ["document.md", "document.json", "document.txt", "document.csv", "document.pdf",
         "provenance.json"])
    assert json.loads(archive.read("provenance.json")) == {"run": "r1"}
    assert archive.read("document.md").decode() == doc.markdown()


def test_formats_and_aliases() -> None:
    assert [normalize_format(f) for f in ("MD", "text", "pdf")] == ["markdown", "txt", "pdf"]
    assert set(FORMATS) == {"json", "markdown", "txt", "csv", "pdf", "zip"}
    with pytest.raises(ValueError, match="unknown format 'docx'"):
        normalize_format("docx")


def _text_of(fmt: str, content: bytes) -> str:
    """What a reader of each format sees, as text."""
    if fmt == "pdf":
        return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return archive.read("document.md").decode()
    return content.decode()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_the_reference_s_facts(fmt: str) -> None:
    """The user service's reference rendered in each format keeps its server, enum
    values, defaults, bounds, body and response fields and schema names."""
    from llmdocs.examples import user_service_spec
    from llmdocs.openapi import SpecBounds, analyse, parse_spec
    from llmdocs.openapi import markdown as md
    from llmdocs.services.orchestrator import apisections

    bounds = SpecBounds()
    spec = parse_spec(user_service_spec().encode(), bounds)
    context = apisections.spec_context(spec, analyse("x", spec, bounds), "url", "x", None,
                                       bounds)
    reference = apisections.reference_of(context)
    document = GeneratedDocument(
        title="User Service API documentation", summary="User Service (version 1.4.0).",
        sections=[Section(title=s["title"], body=apisections.body(reference, s, "") or "")
                  for s in apisections.outline(reference, errors=False)],
        table_columns=md.TABLE_COLUMNS, table_rows=md.table_rows(reference))
    text = " ".join(_text_of(fmt, render(document, fmt).content).split())
    facts = ["https://api.example.com/v1", "member", "admin", "20", "100", "created_at",
             "password", "NewUser", "bearerAuth", "409"]
    assert [fact for fact in facts if fact not in text] == []
