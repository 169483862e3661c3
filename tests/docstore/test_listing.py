"""Lists are one statement per shape of request, reused with each request's values: the
answers must follow the values, and a summary must equal the document's own."""

from __future__ import annotations

import base64
import json
from typing import Any

from docstore.conftest import Store


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
    assert by_time.status_code == 400 and by_time.json()["errors"][0]["field"] == "cursor"
