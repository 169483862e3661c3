"""analyze_consistency over real HTTP: a stored document measured against the stored
OpenAPI spec of the user service, the findings (endpoints, parameters and response
codes missing, endpoints invented) returned and stored as a report with provenance."""

from __future__ import annotations

import csv
import io

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.openapi import Operation, markdown
from llmdocs.openapi.reference import build_reference
from llmdocs.services.discovery.settings import DiscoverySettings
from llmdocs.services.docstore.client import DocStoreClient
from services.orchestrator.test_docgen_e2e import OPERATIONS, SPEC, client

TITLE = "User Service API documentation"


def reference(operations: list[Operation]) -> str:
    """The operations' blocks as the document-generation workflow renders them."""
    spec = build_reference(SPEC, DiscoverySettings())
    wanted = {(op.method, op.path) for op in operations}
    return "# " + TITLE + "\n\n" + "\n\n".join(
        markdown.operation_block(op, spec) for op in spec.operations
        if (op.method, op.path) in wanted)


async def put(settings: Settings, content: str, title: str) -> str:
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        stored = await docs.put(content, title=title, format="markdown",
                                tags=["generated", "api_documentation"])
    return stored.document_id


async def test_drifted_and_consistent_documents(eco: Settings) -> None:
    spec_id = await store_spec(eco)
    listing = next(op for op in OPERATIONS if op.method == "get" and op.path == "/users")
    dropped, kept = OPERATIONS[-1], OPERATIONS[:-1]
    # the last endpoint left out, GET /users without its `limit` parameter, one invented
    drifted = reference(kept).replace("| `limit` |", "| limit |") + (
        "\n\n### `DELETE /admin/purge`\n\nRemoves everything.")
    drifted_id = await put(eco, drifted, "User Service notes")
    good_id = await put(eco, reference(OPERATIONS), TITLE)

    async with client(eco) as http:
        plan = (await http.post("/interpret", json={
            "query": f"Is document {drifted_id} consistent with the user service?"})).json()
        assert plan["intent"] == "analyze_consistency"
        assert plan["workflow"] == "consistency-check"
        assert plan["workflow_input"]["document_id"] == drifted_id
        bad = await http.post("/execute-query", json={
            "query": f"Is document {drifted_id} consistent with the user service?",
            "format": "csv", "user_id": "u1"})
        assert bad.status_code == 200, bad.text
        rows = list(csv.reader(io.StringIO((await http.get(
            f"/documents/{bad.json()['document_id']}/download")).text)))
        # with no document named: the newest generated documentation of that API
        good = await http.post("/execute-query", json={
            "query": "Check the consistency of the docs of the user service"})
        assert good.status_code == 200, good.text
        no_spec = await http.post("/execute-query", json={
            "query": f"Is document {drifted_id} consistent?"})
        missing_doc = await http.post("/execute-query", json={
            "query": "Is document 0190aaaa-0000-7000-8000-000000000000 consistent with "
                     "the user service?"})

    found = bad.json()["provenance"]["quality_metrics"]
    assert found["consistent"] is False
    assert found["invented"] == ["DELETE /admin/purge"]
    assert f"{dropped.method.upper()} {dropped.path}: the endpoint is not documented" in (
        found["missing"])
    assert "GET /users: parameter limit is missing" in found["missing"]
    assert len(found["missing"]) == 2 and found["coverage"] < 1.0
    assert listing.parameters  # the spec does have the parameter the document lost
    assert rows[0] == ["finding", "endpoint", "detail"]
    assert ["invented", "DELETE /admin/purge", "not in the spec"] in rows
    assert ["missing", "GET /users", "parameter limit is missing"] in rows

    lineage = bad.json()["provenance"]["data_lineage"]["sources"]
    assert [(s["document_id"], s["role"]) for s in lineage] == [
        (drifted_id, "checked"), (spec_id, "openapi_spec")]
    assert bad.json()["provenance"]["llm_calls"] == []  # the verdict is the sources'
    steps = [s["name"] for s in bad.json()["steps"]]
    assert steps == ["analyze", "gather", "compare", "store"]

    verdict = good.json()["provenance"]
    assert verdict["quality_metrics"]["consistent"] is True
    assert verdict["quality_metrics"]["missing"] == verdict["quality_metrics"]["invented"] == []
    assert verdict["data_lineage"]["sources"][0]["document_id"] == good_id
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        report = await docs.get(good.json()["document_id"])
        relations = await docs.relations(good.json()["document_id"])
    assert "is consistent with User Service" in (report.content or "")
    assert {r.target_id for r in relations.outgoing} == {good_id, spec_id}

    assert no_spec.status_code == 422 and "which API" in no_spec.json()["detail"]
    assert missing_doc.status_code == 422 and "not found" in missing_doc.json()["detail"]
