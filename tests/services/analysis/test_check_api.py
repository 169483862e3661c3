"""`POST /check` over real HTTP: a Markdown document, as text or stored, checked against
a spec by the one document check; what is not Markdown text is a 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from services.analysis.test_diff_api import analysis, spec

HANDWRITTEN = (Path(__file__).parents[2] / "claims" / "data"
               / "user-service-handwritten.md").read_text()


async def test_a_document_as_text_or_stored_is_checked_against_the_spec(
        eco: Settings, serve: Any) -> None:
    spec_id = await store_spec(eco)
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        doc_id = (await docs.put(HANDWRITTEN, title="by hand", format="markdown")).document_id
        json_id = (await docs.put('{"a": 1}', title="data", format="json")).document_id
    async with await analysis(eco, serve) as http:
        answers = [await http.post("/check", json={"document": document, "spec": ref})
                   for document, ref in (({"content": HANDWRITTEN}, {"document_id": spec_id}),
                                         ({"document_id": doc_id}, {"spec": spec()}))]
        for answer in answers:
            assert answer.status_code == 200, answer.text
        assert answers[0].json() == answers[1].json()
        found = answers[0].json()
        assert ("operation", "GET /users/{user_id}/avatar", None) in {
            (u["kind"], u["claim"], u["operation"]) for u in found["unsupported"]}
        assert "DELETE /sessions/current" in found["missing"]  # never documented
        assert found["supported"] < found["claims"]
        assert found["scores"]["truthfulness"] == round(found["supported"] / found["claims"], 4)

        not_markdown = await http.post("/check", json={"document": {"document_id": json_id},
                                                       "spec": {"spec": spec()}})
        assert not_markdown.status_code == 422 and "not Markdown" in not_markdown.json()["detail"]
        bad_spec = await http.post("/check", json={"document": {"content": HANDWRITTEN},
                                                   "spec": {"content": "openapi: ["}})
        assert bad_spec.status_code == 422 and "spec" in bad_spec.json()["detail"]
        wrong_kind = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
                      "paths": {"/x": {"get": {"responses": [1]}}}}
        for path, body in (("/check", {"document": {"content": HANDWRITTEN},
                                       "spec": {"spec": wrong_kind}}),
                           ("/diff", {"base": {"spec": spec()}, "head": {"spec": wrong_kind}})):
            answer = await http.post(path, json=body)
            assert answer.status_code in (200, 422), answer.text  # never a 500
