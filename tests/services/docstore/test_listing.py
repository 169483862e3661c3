"""Lists are one statement per shape of request, reused with each request's values: the
answers must follow the values, and a summary must equal the document's own."""

from __future__ import annotations

import base64
import json
from typing import Any

from badinput import assert_refused
from services.docstore.conftest import Store


async def test_requests_of_one_shape_answer_by_their_own_values(store: Store) -> None:
    docs = [await store.put(f"doc {i}", title=f"doc {i}", source=f"s{i % 2}",
                            author=f"a{i % 2}", tags=[f"t{i % 2}", "all"],
                            metadata={"team": f"team{i % 2}"}) for i in range(4)]
    newest_first = [d["document_id"] for d in docs][::-1]
    even, odd = newest_first[1::2], newest_first[0::2]

    async def ids(**params: Any) -> list[str]:
        answer = await store.http.get("/documents", params=params)
        assert answer.status_code == 200, answer.text
        return [d["document_id"] for d in answer.json()["items"]]

    for parity, expected in ((0, even), (1, odd), (0, even)):
        assert await ids(tag=f"t{parity}") == expected
        assert await ids(tag=["all", f"t{parity}"]) == expected
        assert await ids(source=f"s{parity}", author=f"a{parity}") == expected
        assert await ids(**{"metadata.team": f"team{parity}"}) == expected
        assert await ids(tag="all", limit=parity + 2) == newest_first[:parity + 2]
    assert await ids(created_after=docs[2]["created_at"]) == newest_first[:2]
    assert await ids(created_after=docs[1]["created_at"]) == newest_first[:3]
    assert await ids(tag="none") == []


async def test_a_listed_summary_equals_the_document(store: Store) -> None:
    text = await store.put("# Spec", title="spec", format="yaml", tags=["openapi", "b", "a"],
                           metadata={"service": "users", "n": 3})
    upload = await store.http.post("/documents", files={"file": ("d.pdf", b"%PDF-1.4 x",
                                                                   "application/pdf")},
                                   data={"tags": "openapi"})
    assert upload.status_code == 201, upload.text
    page = (await store.http.get("/documents", params={"tag": "openapi", "limit": 100})).json()
    listed = {d["document_id"]: d for d in page["items"]}
    assert page["next_cursor"] is None and len(listed) == 2
    for made in (text, upload.json()):
        full = (await store.http.get(f"/documents/{made['document_id']}")).json()
        summary = listed[made["document_id"]]
        assert summary == {k: full[k] for k in summary}
        assert summary == {k: v for k, v in made.items() if k != "created"}
    assert listed[text["document_id"]]["tags"] == ["a", "b", "openapi"]
    binary = listed[upload.json()["document_id"]]
    assert (binary["kind"], binary["filename"], binary["size"]) == ("binary", "d.pdf", 10)


async def test_a_forged_cursor_is_a_clear_answer(store: Store) -> None:
    for i in range(3):
        await store.put(f"forged {i}", title=f"f{i}")
    forged = base64.urlsafe_b64encode(json.dumps([7, 8]).encode()).decode().rstrip("=")
    by_title = await store.http.get("/documents", params={"sort": "title", "cursor": forged})
    assert by_title.status_code == 200, by_title.text
    assert [d["title"] for d in by_title.json()["items"]] == ["f0", "f1", "f2"]  # "7" < "f"
    by_time = await store.http.get("/documents", params={"cursor": forged})
    assert by_time.status_code == 422 and by_time.json()["errors"][0]["field"] == "cursor"


# An empty cursor was a 500, and forged ones holding what a column or an offset cannot
# take were 500s on PostgreSQL: each is a 422 naming the cursor.
def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor(*values: Any) -> str:
    return b64(json.dumps(list(values)).encode())


# a cursor of a listing: the sort value and id of the last document of the page before
LIST_CURSORS = {
    "empty": "",
    "garbage": "%%%",
    "not base64": "\u00e9t\u00e9",
    "base64 of garbage": b64(b"\xff\xfe\x00garbage"),
    "base64 of text": b64(b"not json"),
    "a JSON object": b64(b'{"a": 1}'),
    "three values": cursor("2026-01-01 00:00:00", "id", "x"),
    "nested too deeply": b64(b"[" * 5000 + b"]" * 5000),  # shorter than the bound
    "huge": "A" * 20_000,
    "a NUL in the id": cursor("2026-01-01 00:00:00", "a\u0000b"),
    "a lone surrogate in the id": cursor("2026-01-01 00:00:00", "\ud800"),
    "not a time": cursor("yesterday", "id"),
    "a time past what UTC holds": cursor("9999-12-31T23:59:59-14:00", "id"),
    "a number past what str() writes": b64(b"[" + b"9" * 5000 + b', "id"]'),
}
TITLE_CURSORS = {"a NUL in the title": cursor("a\u0000b", "id"),
                 "a lone surrogate in the title": cursor("\ud800", "id")}
SEARCH_CURSORS = {"empty": "", "garbage": "%%%", "not a number": cursor("x"),
                  "negative": cursor(-1), "past an offset": cursor(2**70),
                  "a fraction": cursor(1.5), "true": cursor(True),
                  "infinite": b64(b"[1e400]"), "two values": cursor(1, 2)}


async def test_a_malformed_cursor_is_a_422_naming_it(store: Store) -> None:
    for i in range(3):
        await store.put(f"paged {i}", title=f"p{i}")
    for name, value in LIST_CURSORS.items():
        for sort in ("-created_at", "updated_at"):
            answer = await store.http.get("/documents", params={"cursor": value, "sort": sort})
            assert answer.status_code == 422, (name, sort, answer.text)
            assert_refused(answer, "cursor")
    for name, value in TITLE_CURSORS.items():
        answer = await store.http.get("/documents", params={"cursor": value, "sort": "title"})
        assert answer.status_code == 422, (name, answer.text)
        assert_refused(answer, "cursor")
    for name, value in SEARCH_CURSORS.items():
        answer = await store.http.get("/search", params={"q": "paged", "cursor": value})
        assert answer.status_code == 422, (name, answer.text)
        assert_refused(answer, "cursor")
    # a cursor the store gave still walks on; an offset past the end is an empty page
    first = (await store.http.get("/documents", params={"limit": 2})).json()
    rest = await store.http.get("/documents", params={"limit": 2,
                                                      "cursor": first["next_cursor"]})
    assert [d["title"] for d in rest.json()["items"]] == ["p0"]
    past = await store.http.get("/search", params={"q": "paged", "cursor": cursor(10**6)})
    assert past.status_code == 200 and past.json()["items"] == []
