"""`llmdocs prompts ...` against a served prompt-store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from llmdocs.cli import app
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings

FILE = """---
name: release-notes
category: docs
description: Release notes from a changelog
tags: [release]
---
Write release notes for {{ product }} from:
{{ changes }}
"""


async def invoke(*args: str) -> Result:
    # the CLI runs its own event loop, so it gets a thread of its own
    return await asyncio.to_thread(CliRunner().invoke, app, ["prompts", *args])


async def test_cli_create_edit_label_render_search_history_ab(
    store_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMDOCS_PROMPTSTORE_URL", store_url)
    monkeypatch.setenv("LLMDOCS_TOKEN", issue_token(settings, "user:cli", ["prompts:*"]))
    path = tmp_path / "notes.md"
    path.write_text(FILE)
    created = await invoke("create", str(path))
    assert created.exit_code == 0, created.output
    assert "release-notes" in created.output and "version 1" in created.output

    path.write_text(FILE.replace("Write release notes", "Write short release notes"))
    edited = await invoke("edit", str(path), "-m", "shorter", "-l", "staging")
    assert edited.exit_code == 0, edited.output
    assert "version 2" in edited.output and "staging" in edited.output

    rendered = await invoke("render", "release-notes", "--label", "staging",
                            "--var", "product=llmdocs", "--var", "changes=- faster")
    assert rendered.output.startswith("Write short release notes for llmdocs from:\n- faster")
    missing = await invoke("render", "release-notes", "--var", "product=x")
    assert missing.exit_code == 1 and "missing: changes" in missing.output

    labelled = await invoke("label", "release-notes", "production", "2")
    assert "production -> 2" in labelled.output
    shown = await invoke("show", "release-notes")
    assert '"version": 2' in shown.output

    history = await invoke("history", "release-notes")
    assert "shorter" in history.output and "staging" in history.output
    assert "release-notes" in (await invoke("search", "changelog")).output
    listed = await invoke("list", "--category", "docs")
    assert "1 prompt(s)" in listed.output and "release-notes" in listed.output

    ab = await invoke("ab", "create", "release-notes", "t1", "--variant", "1:50",
                      "--variant", "2:50")
    assert ab.exit_code == 0, ab.output
    assert '"status": "running"' in ab.output
    bad = await invoke("ab", "create", "release-notes", "t2", "--variant", "1:50",
                       "--variant", "2:20")
    assert bad.exit_code == 2 and "must sum to 1 or 100" in bad.output
    broken = tmp_path / "broken.md"
    broken.write_text("no front matter")
    assert (await invoke("create", str(broken))).exit_code == 2
