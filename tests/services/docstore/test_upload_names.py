"""An upload's file name could hold bidirectional and zero-width characters, so that the
name shown was not the name ("invoice\u202etxt.exe" shows as "invoiceexe.txt"); such a
name is a 422 naming the file, and names in any script are still taken."""

from __future__ import annotations

import pytest

from badinput import assert_refused
from services.docstore.conftest import Store


@pytest.mark.parametrize("name", [
    "invoice\u202etxt.exe",  # RIGHT-TO-LEFT OVERRIDE
    "report\u202a.pdf", "report\u202b.pdf", "report\u202c.pdf", "report\u202d.pdf",
    "a\u2066b.pdf", "a\u2067b.pdf", "a\u2068b.pdf", "a\u2069b.pdf",  # bidi isolates
    "a\u200eb.pdf", "a\u200fb.pdf", "a\u061cb.pdf",  # directional marks
    "pay\u200bpal.pdf", "a\u200cb.pdf", "a\u200db.pdf", "a\u2060b.pdf",  # zero-width
    "\ufeffbom.pdf", "soft\u00adhyphen.pdf",  # other invisible format characters
    "a\u0085b.pdf", "a\u2028b.pdf", "a\u2029b.pdf",  # a C1 control, line breaks
])
async def test_an_upload_name_that_does_not_show_as_itself_is_a_422(
        sqlite_store: Store, name: str) -> None:
    before = (await sqlite_store.http.get("/documents")).json()["items"]
    made = await sqlite_store.http.post(
        "/documents", files={"file": (name, b"%PDF-1.4", "application/pdf")})
    assert_refused(made, "file")
    assert made.json()["errors"][0]["message"].isascii()  # the name, not its display
    doc = await sqlite_store.put("plain")
    again = await sqlite_store.http.put(
        f"/documents/{doc['document_id']}",
        files={"file": (name, b"%PDF-1.4", "application/pdf")})
    assert_refused(again, "file")
    assert len((await sqlite_store.http.get("/documents")).json()["items"]) == len(before) + 1


async def test_names_in_any_script_are_still_plain_names(sqlite_store: Store) -> None:
    for name in ("Bericht für Q3.pdf", "報告書.pdf", "تقرير.pdf", "отчёт 2026.pdf"):
        made = await sqlite_store.http.post(
            "/documents", files={"file": (name, name.encode(), "application/pdf")})
        assert made.status_code == 201, made.text
        assert made.json()["filename"] == name
