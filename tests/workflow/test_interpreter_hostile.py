"""Hostile input to the interpreter that got past its request schema: a provenance
anyone stored in the doc-store that the interpreter's answer trusted (a 500 when its
workflow part was not an object or its run id no id, and its own keys passed for the
document's id, version and hash). Real services over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from workflow import test_interpreter_input
from workflow.conftest import token
from workflow.test_interpreter_input import as_user

ieco = test_interpreter_input.ieco  # the ecosystem with the example spec and a fake model

# what the doc-store keeps as a document's provenance: any JSON object
PROVENANCE: dict[str, dict[str, Any]] = {
    "workflow part a string": {"workflow_execution": "x"},
    "workflow part a number": {"workflow_execution": 5},
    "workflow part a list": {"workflow_execution": [1]},
    "run id walks up the path": {"workflow_execution": {"execution_id": "../../health"}},
    "run id with a line break": {"workflow_execution": {"execution_id": "a b\r\nc"}},
    "run id too long for a URL": {"workflow_execution": {"execution_id": "a" * 100_000}},
}


@pytest.mark.parametrize("name", PROVENANCE)
async def test_a_stored_provenance_of_any_shape_reads_as_stored(ieco: Settings,
                                                                name: str) -> None:
    stored = PROVENANCE[name]
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        document = await docs.put(f"# {name}", title="Provenance", format="markdown",
                                  provenance=stored)
        path = f"/documents/{document.document_id}/provenance"
        for method in ("GET", "HEAD"):
            answer = await http.request(method, path)
            assert answer.status_code == 200, (method, answer.text)
        shown = (await http.get(path)).json()["workflow_execution"]
        part = stored["workflow_execution"]
        # a run id that is none is not asked of the orchestrator: its steps are unknown
        assert shown == ({**part, "steps_complete": False} if isinstance(part, dict)
                         else part)
        assert (await docs.provenance(document.document_id)).provenance == stored


async def test_a_stored_provenance_cannot_pass_for_the_documents_identity(
        ieco: Settings) -> None:
    forged = {"document_id": "forged", "version": 99, "content_hash": "forged",
              "relations": "forged"}
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        document = await docs.put("# forged", title="Forged", format="markdown",
                                  provenance=forged)
        shown = (await http.get(f"/documents/{document.document_id}/provenance")).json()
        assert (shown["document_id"], shown["version"], shown["content_hash"]) == (
            document.document_id, document.version, document.content_hash)
        assert shown["relations"]["document_id"] == document.document_id
        assert (await docs.provenance(document.document_id)).provenance == forged
