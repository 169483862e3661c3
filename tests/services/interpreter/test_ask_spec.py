"""`llmdocs ask "…" --spec FILE|URL|DOCUMENT_ID`: a file is stored in the doc-store
first (tag openapi, titled as the spec) and named by its id, a URL is the request's
spec_url, anything else a stored document's id; a malformed one is refused before any
run. Through the CLI against real services; the model is the local fake."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from ecosystem import token
from llmdocs.cli import app
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import WorkflowRunOut
from services.interpreter.test_interpreter_input import PEOPLE, fake_eco, run_ids

QUERY = "Create API documentation"  # names no API: the spec comes from --spec


async def test_ask_takes_the_spec_as_a_file_a_url_or_a_document_id(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    eco = await fake_eco(settings, serve, monkeypatch)
    site = await serve(Starlette(routes=[Route(
        "/openapi.yaml", lambda _: PlainTextResponse(user_service_spec()))]))
    monkeypatch.setenv("LLMDOCS_INTERPRETER_URL", eco.url_for("interpreter"))
    monkeypatch.setenv("LLMDOCS_DOCSTORE_URL", eco.url_for("docstore"))
    monkeypatch.setenv("LLMDOCS_TOKEN", issue_token(eco, "user:carol", (*PEOPLE, "docs:write")))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    spec_file = tmp_path / "users.yaml"
    spec_file.write_text(user_service_spec())

    async def ask(spec: str, name: str) -> tuple[Any, WorkflowRunOut | None]:
        before = await run_ids(eco)
        result = await asyncio.to_thread(runner.invoke, app, [
            "ask", QUERY, "--spec", spec, "-o", str(tmp_path / name)])
        new = await run_ids(eco) - before
        assert len(new) <= 1
        if not new:
            return result, None
        async with OrchestratorClient.for_service(eco, token=token(eco)) as orch:
            return result, await orch.run(new.pop())

    from_file, run = await ask(str(spec_file), "file.md")
    assert from_file.exit_code == 0, from_file.output
    assert run and run.status == "completed"
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        specs = (await docs.list(tag="openapi")).items
    assert [(d.title, d.document_id) for d in specs] == [
        ("User Service", run.input["spec_document_id"])]
    assert f"as document {specs[0].document_id}" in from_file.output
    assert "`GET /users`" in (tmp_path / "file.md").read_text()

    by_id, run = await ask(specs[0].document_id, "id.md")
    assert by_id.exit_code == 0, by_id.output
    assert run and run.input["spec_document_id"] == specs[0].document_id

    by_url, run = await ask(site.url + "/openapi.yaml", "url.md")
    assert by_url.exit_code == 0, by_url.output
    assert run and run.input["spec_url"] == site.url + "/openapi.yaml"
    assert run.result and run.result["provenance"]["data_lineage"]["spec"]["url"] == \
        site.url + "/openapi.yaml"

    for bad, where in (("not an id!", "spec_document_id"), ("http://", "spec_url")):
        refused, run = await ask(bad, "bad.md")
        assert refused.exit_code == 1 and where in refused.output, refused.output
        assert run is None and "Traceback" not in refused.output
    not_a_spec = tmp_path / "notes.txt"
    not_a_spec.write_text("just some notes\n")
    refused, run = await ask(str(not_a_spec), "bad.md")
    assert refused.exit_code == 1 and "not a usable OpenAPI spec" in refused.output
    assert run is None
