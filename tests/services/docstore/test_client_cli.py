"""The typed client (what the interpreter will use) and `llmdocs docs ...`, against a
real doc-store over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmdocs.cli import app
from llmdocs.core.auth import issue_token
from llmdocs.core.client import PreconditionFailed
from llmdocs.services.docstore.client import DocStoreClient
from services.docstore.conftest import Store


async def test_client_round_trip(sqlite_store: Store) -> None:
    token = issue_token(sqlite_store.settings, "service:interpreter", ["docs:*"])
    async with DocStoreClient(sqlite_store.url, token=token) as docs:
        spec = await docs.put('{"paths": {}}', title="spec", format="json", source="svc")
        pdf = await docs.upload(b"%PDF-1.4 x", "out.pdf", content_type="application/pdf",
                                format="pdf", tags=["generated"],
                                provenance={"inputs": [spec.document_id]},
                                relations=[{"type": "derived_from",
                                            "target_id": spec.document_id}])
        assert pdf.kind == "binary" and pdf.tags == ["generated"]
        data, media_type, name = await docs.download(pdf.document_id)
        assert (data, media_type, name) == (b"%PDF-1.4 x", "application/pdf", "out.pdf")
        assert (await docs.provenance(pdf.document_id)).provenance == {
            "inputs": [spec.document_id]}
        assert [n.document_id for n in (await docs.lineage(pdf.document_id)).nodes] == [
            spec.document_id]

        v2 = await docs.update(spec.document_id, '{"paths": {"/u": {}}}', if_version=1)
        with pytest.raises(PreconditionFailed):
            await docs.update(spec.document_id, "stale", if_version=1)
        assert [v.version for v in (await docs.versions(spec.document_id)).items] == [2, 1]
        assert "+" in (await docs.diff(spec.document_id, 1, 2)).diff
        back = await docs.rollback(spec.document_id, 1, if_version=v2.version)
        assert back.content_hash == spec.content_hash
        assert (await docs.get(spec.document_id, version=2)).content == '{"paths": {"/u": {}}}'

        results = await docs.bulk([{"content": f"bulk {i} words", "source": "b"}
                                   for i in range(3)])
        assert [r.status for r in results] == [201, 201, 201]
        assert len((await docs.list(source="b")).items) == 3
        assert (await docs.search("words", source="b")).items[0].snippet
        patched = await docs.patch(pdf.document_id, metadata={"k": "v"})
        assert patched.metadata == {"k": "v"}


async def test_cli_commands(sqlite_store: Store, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_DOCSTORE_URL", sqlite_store.url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LLMDOCS_TOKEN",
                       issue_token(sqlite_store.settings, "user:cli", ["docs:*"]))
    files = []
    for i in range(3):
        path = tmp_path / f"note{i}.md"
        path.write_text(f"# Note {i}\n\nzebra crossing number {i}\n")
        files.append(str(path))
    runner = CliRunner()

    async def cli(*args: str) -> str:
        result = await asyncio.to_thread(runner.invoke, app, ["docs", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert (await cli("put", *files, "--source", "notes", "--tag", "cli")).count("stored") == 3
    listed = json.loads(await cli("list", "--tag", "cli", "--json"))
    assert len(listed["items"]) == 3
    doc_id = listed["items"][-1]["document_id"]
    assert "zebra" in json.loads(await cli("get", doc_id))["content"]
    assert doc_id in await cli("search", "zebra crossing")
    target = tmp_path / "out.md"
    await cli("download", doc_id, "-o", str(target))
    assert target.read_text() == "# Note 0\n\nzebra crossing number 0\n"
    await cli("put", files[0], "--source", "notes")  # same content: unchanged
    async with DocStoreClient(sqlite_store.url, token=sqlite_store.headers("docs:*")[
            "Authorization"].split()[1]) as docs:
        await docs.update(doc_id, "changed", format="md")
    history = await cli("history", doc_id)
    assert listed["items"][-1]["content_hash"][:12] in history and "changed" not in history
    assert "version 3" in await cli("rollback", doc_id, "1")
    assert json.loads(await cli("provenance", doc_id))["version"] == 3
    missing = await asyncio.to_thread(runner.invoke, app, ["docs", "get", "nope"])
    assert missing.exit_code == 1 and "404" in missing.output
