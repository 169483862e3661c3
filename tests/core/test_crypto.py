"""Encryption at rest over a real doc-store and prompt-store on SQLite: a marker sentence
written through the APIs is nowhere in the raw database files (database, -wal, -shm) nor
in the blob store, reads back, and is still found by search. What may appear: single
words of it, in the full-text index (FTS5 keeps terms, never the sentence), and the
prompt-store's search words (sorted, each once)."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from llmdocs.core import crypto
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.core.db import Base, Database
from llmdocs.keys import rotate
from llmdocs.services import create_app

MARKER = "the quartermaster hid seventeen violet umbrellas beneath the lighthouse"
KEY_A = base64.b64encode(b"a" * 32).decode()


def raw_files(settings: Settings) -> list[Path]:
    return [p for p in settings.data_dir.rglob("*") if p.is_file()]


def plaintext_in(files: list[Path], needle: str) -> list[Path]:
    return [p for p in files if needle.encode() in p.read_bytes()]


async def test_marker_sentence_is_encrypted_everywhere(serve: Any, settings: Settings) -> None:
    settings.encryption_keys = SecretStr(json.dumps({"k1": KEY_A}))
    token = issue_token(settings, "user:t", ["docs:read", "docs:write", "prompts:read",
                                             "prompts:write"])
    headers = {"Authorization": f"Bearer {token}"}
    docs = await serve(create_app("docstore", settings))
    prompts = await serve(create_app("promptstore", settings))
    async with httpx.AsyncClient(base_url=docs.url, headers=headers, timeout=30) as http:
        made = (await http.post("/documents", json={"content": f"# Notes\n\n{MARKER}.\n",
                                                    "title": "notes"})).json()
        upload = await http.post("/documents", files={"file": (
            "m.pdf", f"%PDF-1.4 {MARKER}".encode(), "application/pdf")})
        assert upload.status_code == 201, upload.text
        bulk = await http.post("/documents/bulk", content=json.dumps(
            {"content": f"bulk {MARKER}", "source": "bulk"}) + "\n",
            headers={"Content-Type": "application/x-ndjson"})
        assert bulk.status_code in (200, 207), bulk.text
        doc = (await http.get(f"/documents/{made['document_id']}")).json()
        assert MARKER in doc["content"]
        blob = await http.get(f"/documents/{upload.json()['document_id']}/download")
        assert blob.content == f"%PDF-1.4 {MARKER}".encode()
        hits = (await http.get("/search", params={"q": "quartermaster umbrellas"})).json()
        assert {hit["document_id"] for hit in hits["items"]} >= {made["document_id"]}
        assert "umbrellas" in hits["items"][0]["snippet"]
    api = prompts.url + "/api/v1"
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        made = await http.post("/prompts", json={"name": "marker", "content": MARKER})
        assert made.status_code == 201, made.text
        got = (await http.get(f"/prompts/{made.json()['id']}")).json()
        assert MARKER in json.dumps(got)
        found = await http.post("/prompts/search", json={"query": "violet lighthouse"})
        assert found.status_code == 200 and "marker" in found.text

    files = raw_files(settings)
    assert any(p.name.endswith("-wal") for p in files)
    assert any("blobs" in p.parts for p in files)
    # neither the sentence nor any two of its words in a row, in any raw file
    words = MARKER.split()
    for pair in itertools.pairwise(words):
        assert plaintext_in(files, " ".join(pair)) == [], pair
    assert plaintext_in(files, "quartermaster") != []  # the search index: terms alone


    # a ring without k1: a clear error naming it, at start-up and on a read
    other = Database(settings.database_url, ring=crypto.KeyRing({"k2": b"b" * 32}))
    try:
        with pytest.raises(crypto.UnknownKey, match="'k1'"):
            await other.check_keys(Base.metadata)
    finally:
        await other.dispose()


@pytest.mark.parametrize("ring", [
    "{", '{"k1": "c2hvcnQ="}', '{"bad id!": "' + KEY_A + '"}', "{}", "/nonexistent/ring.json"])
def test_a_malformed_ring_is_refused_at_start(ring: str) -> None:
    with pytest.raises(ValidationError, match=r"LLMDOCS_ENCRYPTION_KEYS|key ring"):
        Settings(encryption_keys=SecretStr(ring))


def test_a_ring_file_is_reread_for_a_key_added_later(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    path.write_text(json.dumps({"k1": KEY_A}))
    reader = crypto.KeyRing.from_value(str(path))
    path.write_text(json.dumps({"k1": KEY_A, "k2": crypto.new_key()}))
    writer = crypto.KeyRing.from_value(str(path))
    sealed = writer.seal_text(MARKER, context="row-1")
    assert writer.current == "k2" and reader.open_text(sealed, "row-1") == MARKER
    with pytest.raises(crypto.CryptoError):
        reader.open_text(sealed, "row-2")  # copied into another row: does not open


async def test_rotation_keeps_data_readable_and_frees_the_old_key(
        serve: Any, settings: Settings) -> None:
    ring = settings.data_dir / "ring.json"
    ring.parent.mkdir(parents=True, exist_ok=True)
    ring.write_text(json.dumps({"k1": KEY_A}))
    settings.encryption_keys = SecretStr(str(ring))
    token = issue_token(settings, "user:t", ["docs:read", "docs:write"])
    headers = {"Authorization": f"Bearer {token}"}
    docs = await serve(create_app("docstore", settings))
    async with httpx.AsyncClient(base_url=docs.url, headers=headers, timeout=30) as http:
        ids = [(await http.post("/documents", json={"content": f"{MARKER} {i}"})).json()[
            "document_id"] for i in range(3)]
        ids.append((await http.post("/documents", files={"file": (
            "m.pdf", f"%PDF {MARKER}".encode(), "application/pdf")})).json()["document_id"])

        async def readable() -> None:
            for doc_id in ids:
                got = await http.get(f"/documents/{doc_id}/download")
                assert got.status_code == 200 and MARKER.encode() in got.content

        batches = 0

        async def between_batches() -> None:
            nonlocal batches
            batches += 1
            await readable()

        class Stopped(Exception):
            pass

        async def stop_after_two() -> None:
            await between_batches()
            if batches == 2:
                raise Stopped

        with pytest.raises(Stopped):  # a rotation stopped midway resumes where it was
            await rotate(settings, "k2", batch=1, after_batch=stop_after_two)
        saved = json.loads((settings.data_dir / "key-rotation.json").read_text())
        assert saved["key"] == "k2" and not saved["finished"] and saved["resealed"] == 2
        rotation = await rotate(settings, "k2", batch=1, after_batch=between_batches)
        assert rotation.finished and rotation.resealed >= 4 and batches >= 4
        assert list(json.loads(ring.read_text())) == ["k1", "k2"]  # no third key
        await readable()
        # a rotation run again after it finished starts another: none is pending
        assert json.loads((settings.data_dir / "key-rotation.json").read_text())["finished"]

    keys = json.loads(ring.read_text())
    ring.write_text(json.dumps({"k2": keys["k2"]}))  # the old key removed
    database = settings.data_dir / "llmdocs.db"
    assert b"ldenc1:k1:" not in database.read_bytes()
    fresh = Settings(data_dir=settings.data_dir, jwt_secret=settings.jwt_secret,
                     encryption_keys=SecretStr(str(ring)), log_format="console")
    again = await serve(create_app("docstore", fresh))
    async with httpx.AsyncClient(base_url=again.url, headers=headers, timeout=30) as http:
        for doc_id in ids:
            got = await http.get(f"/documents/{doc_id}/download")
            assert got.status_code == 200 and MARKER.encode() in got.content


async def test_a_record_whose_key_left_the_ring_is_a_503_naming_it(
        serve: Any, settings: Settings) -> None:
    ring = settings.data_dir / "ring.json"
    ring.parent.mkdir(parents=True, exist_ok=True)
    key_1, key_2 = crypto.new_key(), crypto.new_key()
    ring.write_text(json.dumps({"k2": key_2}))
    settings.encryption_keys = SecretStr(str(ring))
    token = issue_token(settings, "user:t", ["docs:read", "docs:write"])
    docs = await serve(create_app("docstore", settings))
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=docs.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        # k2, then k1, then k2 seal: the oldest and newest need k2 only
        for keys in ({"k2": key_2}, {"k2": key_2, "k1": key_1}, {"k1": key_1, "k2": key_2}):
            ring.write_text(json.dumps(keys))
            assert settings.data_ring is not None
            settings.data_ring.refresh(force=True)
            made = await http.post("/documents", json={"content": f"{MARKER} {len(ids)}"})
            ids.append(made.json()["document_id"])
    ring.write_text(json.dumps({"k2": key_2}))
    # another doc-store (the first one caches what it read): it starts, as the oldest
    # and newest records need k2 only, and a read of the k1 record is refused
    fresh = Settings(data_dir=settings.data_dir, jwt_secret=settings.jwt_secret,
                     encryption_keys=SecretStr(str(ring)), log_format="console")
    again = await serve(create_app("docstore", fresh))
    async with httpx.AsyncClient(base_url=again.url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get(f"/documents/{ids[0]}")).status_code == 200
        lost = await http.get(f"/documents/{ids[1]}")
        assert lost.status_code == 503 and "'k1'" in lost.json()["detail"]
        assert "retry-after" in lost.headers


def test_keys_rotate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from llmdocs.cli import app

    monkeypatch.setenv("LLMDOCS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LLMDOCS_ENCRYPTION_KEYS", json.dumps({"k1": KEY_A}))
    refused = CliRunner().invoke(app, ["keys", "rotate"])
    assert refused.exit_code == 1 and "path of a file" in refused.output
    ring = tmp_path / "ring.json"
    ring.write_text(json.dumps({"k1": KEY_A}))
    monkeypatch.setenv("LLMDOCS_ENCRYPTION_KEYS", str(ring))
    done = CliRunner().invoke(app, ["keys", "rotate", "--key-id", "k2"])
    assert done.exit_code == 0, done.output
    assert "done" in done.output and "keys k1 may now be removed" in " ".join(done.output.split())
    assert list(json.loads(ring.read_text())) == ["k1", "k2"]


async def test_checkpoints_are_sealed(tmp_path: Path) -> None:
    """A run's state (values and pending writes) in LangGraph's SQLite file, WAL too."""
    from langgraph.checkpoint.base import empty_checkpoint

    from llmdocs.services.orchestrator.checkpoints import sqlite_checkpointer

    path = tmp_path / "checkpoints.db"
    ring = crypto.KeyRing({"k1": b"a" * 32})
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    async with sqlite_checkpointer(path, ring) as saver:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"query": MARKER}
        checkpoint["channel_versions"] = {"query": 1}
        saved = await saver.aput(config, checkpoint, {}, {"query": 1})
        await saver.aput_writes(saved, [("answer", MARKER)], task_id="write")
        await saver.aput(saved, empty_checkpoint(), {}, {})
        found = await saver.aget_tuple(saved)
        assert found is not None and [w[2] for w in found.pending_writes or []] == [MARKER]
        files = [p for p in tmp_path.iterdir() if p.is_file()]
        assert any(p.name.endswith("-wal") for p in files)
        assert plaintext_in(files, "violet umbrellas") == []
    async with sqlite_checkpointer(path, ring) as saver:
        first = await saver.aget_tuple({"configurable": {
            "thread_id": "t", "checkpoint_ns": "",
            "checkpoint_id": saved["configurable"]["checkpoint_id"]}})
        assert first is not None and first.checkpoint["channel_values"] == {"query": MARKER}


def test_secrets_are_sealed_without_a_configured_ring(tmp_path: Path) -> None:
    """Embedded mode makes a ring for secrets once into the data dir; distributed
    replicas derive the same one from the JWT secret they share, and no file."""
    embedded = Settings(data_dir=tmp_path)
    assert embedded.data_ring is None
    sealed = embedded.secrets_ring.seal_text("hook-secret", context="hook-1")
    assert sealed != embedded.secrets_ring.seal_text("hook-secret", context="hook-1")
    again = Settings(data_dir=tmp_path).secrets_ring
    assert again.open_text(sealed, "hook-1") == "hook-secret"
    assert (tmp_path / crypto.GENERATED_RING).stat().st_mode & 0o077 == 0
    replicas = [Settings(data_dir=tmp_path / name, jwt_secret=SecretStr("j" * 48),
                         database_url="postgresql+asyncpg://h/db") for name in "ab"]
    sealed = replicas[0].secrets_ring.seal_text("hook-secret", context="hook-1")
    assert sealed.startswith(f"{crypto.TEXT_PREFIX}{crypto.DERIVED_KEY_ID}:")
    assert replicas[1].secrets_ring.open_text(sealed, "hook-1") == "hook-secret"
    assert not any((tmp_path / name).exists() for name in "ab")
    other = Settings(jwt_secret=SecretStr("k" * 48), database_url="postgresql+asyncpg://h/db")
    with pytest.raises(crypto.CryptoError):  # another JWT secret: another key
        other.secrets_ring.open_text(sealed, "hook-1")
    configured = Settings(jwt_secret=SecretStr("j" * 48), encryption_keys=SecretStr(
        json.dumps({"k1": KEY_A})), database_url="postgresql+asyncpg://h/db")
    assert configured.secrets_ring.open_text(sealed, "hook-1") == "hook-secret"
    assert configured.secrets_ring.seal_text("s").startswith(f"{crypto.TEXT_PREFIX}k1:")


def test_an_embedded_secret_opens_after_a_ring_is_set(tmp_path: Path) -> None:
    sealed = Settings(data_dir=tmp_path).secrets_ring.seal_text("hook-secret", "hook-1")
    ring = SecretStr(json.dumps({"k1": KEY_A}))
    configured = Settings(data_dir=tmp_path, encryption_keys=ring).secrets_ring
    assert configured.open_text(sealed, "hook-1") == "hook-secret"
    fresh = Settings(data_dir=tmp_path / "fresh", encryption_keys=ring)
    assert fresh.secrets_ring.key_ids == ["k1"]  # no key file made once a ring is set
    assert not (tmp_path / "fresh").exists()


def test_an_altered_sealed_secret_does_not_open() -> None:
    ring = crypto.KeyRing({"k1": base64.b64decode(KEY_A)})
    sealed = ring.seal_text("whsec_abc", context="row-1")
    prefix, _, payload = sealed.rpartition(":")
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1
    with pytest.raises(crypto.CryptoError):
        ring.open_text(f"{prefix}:{base64.b64encode(bytes(raw)).decode()}", "row-1")
