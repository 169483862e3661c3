"""The reference as Markdown: every kind of fact where a reader looks for it, links that
land on their headings, and spec text that cannot break out of its place."""

from __future__ import annotations

import csv
import io
from typing import Any

from markdown_it import MarkdownIt

from llmdocs.formats import GeneratedDocument, Section, render
from llmdocs.openapi import SpecBounds
from llmdocs.openapi import markdown as md
from llmdocs.openapi.reference import Reference, build_reference

HOSTILE = "Breaks | tables\nand <script>alert(1)</script> <b>bold</b>\n# not a heading"
DOC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Things", "version": "2.1", "description": HOSTILE},
    "servers": [{"url": "https://{region}.example.com/api", "description": "production",
                 "variables": {"region": {"default": "eu"}}}],
    "tags": [{"name": "thing", "description": "All about things."}],
    "components": {
        "securitySchemes": {
            "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "basic": {"type": "http", "scheme": "basic"},
            "oauth": {"type": "oauth2", "flows": {"clientCredentials": {
                "tokenUrl": "https://auth.example.com/token", "scopes": {"read": "Read"}}}}},
        "schemas": {"Thing": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer", "readOnly": True},
            "size": {"type": "string", "enum": ["S", "M"], "default": "M",
                     "description": HOSTILE}}}}},
    "security": [{"key": []}],
    "paths": {
        "/things/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "get": {"tags": ["thing"], "summary": "Get a thing", "deprecated": True,
                    "parameters": [
                        {"name": "fields", "in": "query", "description": "Which | fields",
                         "schema": {"type": "string", "minLength": 2, "maxLength": 9,
                                    "pattern": "^[a-z,]+$"}},
                        {"name": "X-Trace", "in": "header", "required": True,
                         "schema": {"type": "string", "example": "abc"}}],
                    "security": [{"oauth": ["read"]}, {"basic": []}],
                    "responses": {
                        "200": {"description": "The thing.",
                                "headers": {"X-Rate": {"description": "Calls left.",
                                                       "schema": {"type": "integer"}}},
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "404": {"description": "No such thing."}}},
            "put": {"tags": ["thing"], "summary": "Replace a thing", "security": [],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "properties": {"inner": {
                            "type": "object", "properties": {"list": {
                                "type": "array", "items": {"type": "object", "properties": {
                                    "leaf": {"type": "boolean"}}}}}}}}}}},
                    "responses": {"204": {"description": "Replaced."}}}}}}


def reference() -> Reference:
    return build_reference(DOC, SpecBounds())


def test_overview_and_authentication() -> None:
    ref = reference()
    overview = md.overview(ref)
    assert "**Things**, version `2.1`." in overview
    assert "`https://eu.example.com/api` — production" in overview
    auth = md.authentication(ref)
    assert "| `key` | apiKey | header `X-API-Key` |" in auth
    assert "`Authorization: Basic <credentials>` (user and password, base64-encoded)" in auth
    assert "clientCredentials (https://auth.example.com/token)" in auth
    assert "scopes: `read` (Read)" in auth
    assert "- `key`: `PUT /things/{id}`" not in auth  # PUT needs none: `security: []`
    assert "- No authentication: `PUT /things/{id}`." in auth
    assert "- `oauth`: `GET /things/{id}`." in auth


def test_an_operation_block_has_every_fact() -> None:
    ref = reference()
    get, put = ref.operations
    block = md.operation_block(get, ref)
    assert block.startswith("### `GET /things/{id}`\n\nGet a thing")
    assert "**Deprecated.**" in block
    assert "**Authentication**: `oauth` (scopes: `read`) or `basic`" in block
    assert "| `id` | path | integer | yes | 1 ≤ value |" in block
    assert ("| `fields` | query | string | no | Which \\| fields — length 2 to 9; "
            "pattern `^[a-z,]+$` |") in block
    assert "| `200` | The thing. | `application/json` [Thing](#thing-1) |" in block
    assert "| `404` | No such thing. | - |" in block
    assert "| `X-Rate` | integer | Calls left. |" in block
    assert ("curl -X GET 'https://eu.example.com/api/things/1' \\\n"
            "  -H 'Authorization: Bearer <token>' \\\n  -H 'X-Trace: abc'") in block
    assert '**Example response** (`200`, generated from the schema)' in block
    assert '"size": "M"' in block
    nested = md.operation_block(put, ref)
    assert "**Authentication**: none" in nested
    assert "**Request body**: `application/json`, required.\n" in nested
    for name in ("inner", "inner.list", "inner.list[].leaf"):
        assert f"| `{name}` |" in nested
    assert "-d '{\"inner\": {\"list\": [{\"leaf\": true}]}}'" in nested


def test_schema_links_land_on_their_headings() -> None:
    """`## Thing` (the tag's section) comes first, so the schema's anchor is `thing-1`,
    as the usual renderers number a repeated heading."""
    ref = reference()
    assert md.schema_anchors(ref) == {"Thing": "thing-1"}
    schemas = md.schemas(ref)
    assert schemas.startswith("### Thing\n")
    assert "| `id` | integer | yes | read-only |" in schemas
    assert "one of: `S`, `M`; default: `M`" in schemas


def test_spec_text_cannot_break_out() -> None:
    ref = reference()
    document = GeneratedDocument(title="Things", sections=[
        Section(title="Overview", body=md.overview(ref)),
        Section(title="Thing", body="\n\n".join(md.group(ref, "thing"))),
        Section(title="Schemas", body=md.schemas(ref))])
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(
        document.markdown())
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html
    assert "<h1>not a heading</h1>" not in html
    assert html.count("<h3>") == 3  # two operations, one schema: no heading injected
    schemas = md.schemas(ref)
    row = next(line for line in schemas.splitlines() if line.startswith("| `size`"))
    assert row.count(" | ") == 3  # the `|` in the description is escaped, not a column
    assert render(document, "pdf").content.startswith(b"%PDF")


def test_csv_rows_per_server_scheme_operation_parameter_field_and_response() -> None:
    ref = reference()
    rows = md.table_rows(ref)
    assert all(len(row) == len(md.TABLE_COLUMNS) for row in rows)
    kinds = [(row[0], row[1], row[3]) for row in rows]
    assert kinds == [
        ("server", "", "https://eu.example.com/api"), ("security scheme", "", "key"),
        ("security scheme", "", "basic"), ("security scheme", "", "oauth"),
        ("operation", "GET", "get_/things/{id}"), ("parameter", "GET", "id"),
        ("parameter", "GET", "fields"), ("parameter", "GET", "X-Trace"),
        ("response", "GET", "200"), ("response field", "GET", "200 id"),
        ("response field", "GET", "200 size"), ("response", "GET", "404"),
        ("operation", "PUT", "put_/things/{id}"), ("parameter", "PUT", "id"),
        ("request body", "PUT", ""), ("request field", "PUT", "inner"),
        ("request field", "PUT", "inner.list"), ("request field", "PUT", "inner.list[].leaf"),
        ("response", "PUT", "204"), ("schema field", "", "id"), ("schema field", "", "size")]
    size = next(row for row in rows if row[3] == "200 size")
    assert size[7] == "one of: S, M; default: M"
    document = GeneratedDocument(title="t", table_columns=md.TABLE_COLUMNS, table_rows=rows)
    parsed = list(csv.reader(io.StringIO(render(document, "csv").content.decode())))
    assert parsed[1:] == rows  # newlines and commas in descriptions survive the CSV
