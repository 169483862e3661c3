"""`llmdocs diff` given doc-store document ids: read through the running analysis
service, a file beside an id sent inline; with no llmdocs answering, an exit 2 that
says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from ecosystem import store_spec, token
from llmdocs.cli import app
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.docstore.client import DocStoreClient
from services.analysis.test_diff_api import EXPECTED, changed


def use(monkeypatch: pytest.MonkeyPatch, eco: Settings, analysis_port: int) -> None:
    """The CLI pointed at the ecosystem, as a user who set its data dir and secret."""
    monkeypatch.setenv("LLMDOCS_ANALYSIS_PORT", str(analysis_port))
    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(eco.data_dir))
    monkeypatch.setenv("LLMDOCS_JWT_SECRET", eco.signing_key)


async def diff(*args: str) -> tuple[int, Any]:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["diff", *args, "--json"])
    return result.exit_code, (json.loads(result.output) if result.exit_code < 2
                              else result.output)


def kinds(answer: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    return sorted((c["kind"], c["operation"], c["breaking"]) for c in answer["changes"])


async def test_document_ids_and_versions_are_diffed_by_the_service(
        eco: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMDOCS_ANALYSIS_REGENERATE", "false")
    await serve(create_app("analysis", eco), port=eco.port_for("analysis"))
    use(monkeypatch, eco, eco.port_for("analysis"))
    doc_id = await store_spec(eco)
    async with DocStoreClient.for_service(eco, token=token(eco)) as docs:
        await docs.update(doc_id, yaml.safe_dump(changed()), if_version=1)
    head = tmp_path / "head.json"
    head.write_text(json.dumps(changed()))

    code, answer = await diff(f"{doc_id}@1", f"{doc_id}@2")
    assert code == 1 and kinds(answer) == EXPECTED
    assert await diff(f"{doc_id}@1", str(head)) == (code, answer)  # a file beside an id
    assert (await diff(doc_id, str(head)))[1]["changes"] == []  # no version: the latest
    code, said = await diff(f"{doc_id}@9", doc_id)
    assert code == 2 and "no document" in said


async def test_an_id_with_no_llmdocs_running_exits_2_saying_so(
        eco: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, eco, free_port())  # nothing listens there
    code, said = await diff("0b6e6a8e-no-such-service", "other-id@2")
    assert code == 2 and "llmdocs up" in " ".join(said.split())
