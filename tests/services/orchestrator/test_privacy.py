"""Privacy requests through the orchestrator, over real services: a person's data made
through the interpreter (an execution, its run and checkpoints, the model calls' usage)
is exported as a ZIP, erased (usage kept under the pseudonym), and gone from the next
export; erasing again finds nothing; a service down leaves a partial receipt that a
retry, or the orchestrator's next start, completes. Embedded on SQLite, and services
each in their own app on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import sys
import zipfile
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import llmdocs
from ecosystem import embedded_up, store_spec
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.core.privacy import EVENT_ERASED, pseudonym
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.orchestrator.schemas import ServiceRegistration
from services.interpreter.test_interpreter_input import PEOPLE, QUERY
from services.orchestrator.fakellm import fake_llm, provider_env

MARKER = "user:marker"
MINE = ("orchestrator", "interpreter", "gateway")  # the services this test fills
GUARD = 60.0  # a hang guard, not a performance bound


def _admin(settings: Settings) -> httpx.AsyncClient:
    bearer = issue_token(settings, "user:dpo", [], roles=["admin"])
    return httpx.AsyncClient(base_url=settings.url_for("orchestrator"), timeout=GUARD,
                             headers={"Authorization": f"Bearer {bearer}"})


def _path(subject: str) -> str:
    return f"/privacy/subjects/{quote(subject, safe='')}"


async def _with_fake_model(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = await serve(fake_llm(0.0))
    # a completed run's checkpoints are kept: the erasure must find them
    for key, value in {**provider_env(model.url), "LLMDOCS_WORKFLOW_KEEP_CHECKPOINTS": "true",
                       "LLMDOCS_DISCOVERY_DISCOVER_ON_START": "false"}.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def embedded(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[Settings]:
    """`llmdocs up`: every service in this process on one SQLite database."""
    await _with_fake_model(serve, monkeypatch)
    async with embedded_up(settings) as (eco, _, _):
        yield eco


async def separate(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                   database_url: str) -> tuple[Settings, dict[str, Any]]:
    """Every service in an app of its own (own resources, calls over HTTP)."""
    await _with_fake_model(serve, monkeypatch)
    settings.database_url = database_url
    eco = settings.model_copy(update={f"{k}_port": free_port() for k in SERVICE_NAMES}
                              | {"inprocess_calls": False})
    apps = {key: await serve(create_app(key, eco), port=eco.port_for(key))
            for key in SERVICE_NAMES}
    return eco, apps


async def made_by_marker(eco: Settings) -> dict[str, Any]:
    """An execution (its run, checkpoints and model calls) of the marker user's."""
    await store_spec(eco)
    bearer = issue_token(eco, MARKER, PEOPLE)
    async with httpx.AsyncClient(base_url=eco.url_for("interpreter"), timeout=GUARD,
                                 headers={"Authorization": f"Bearer {bearer}"}) as user:
        answer = await user.post("/execute-query", json={"query": QUERY, "session_id": "s1"})
    assert answer.status_code == 200, answer.text
    done: dict[str, Any] = answer.json()
    return done


async def exported(admin: httpx.AsyncClient, subject: str
                   ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    answer = await admin.get(_path(subject) + "/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        files = {name: json.loads(archive.read(name)) for name in archive.namelist()}
    return files.pop("manifest.json"), files


def only_pseudonymised(files: dict[str, list[dict[str, Any]]], pseudonym_: str) -> None:
    """What an export finds after an erasure: nothing of this test's services, and of
    what other services must keep (audit records), nothing naming the person but by
    their pseudonym."""
    kept = {name: rows for name, rows in files.items() if rows}
    assert not [name for name in kept if name.split("/")[0] in MINE], kept
    assert MARKER not in json.dumps(kept)
    assert all(pseudonym_ in json.dumps(row) for rows in kept.values() for row in rows)


def checkpoint_rows(settings: Settings, run_id: str) -> int:
    """The rows of a run's LangGraph thread, in the embedded checkpoint file."""
    path = Path(settings.database_url.split("///", 1)[1]).with_suffix(".checkpoints.db")
    with closing(sqlite3.connect(path)) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = ?",
                                (run_id,)).fetchone()[0]
                   for table in ("checkpoints", "checkpoint_blobs", "writes"))


def total(receipt: dict[str, Any]) -> int:
    return sum(sum(part["erased"].values()) for part in receipt["services"].values())


async def column(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).scalars())
    finally:
        await engine.dispose()


async def test_export_erase_and_again_embedded(embedded: Settings) -> None:
    eco = embedded
    done = await made_by_marker(eco)
    async with OrchestratorClient.for_service(eco, token=issue_token(
            eco, MARKER, ["workflows:read", "workflows:write"])) as marker:
        await marker.register_service(ServiceRegistration(
            name="markers-api", base_url="http://127.0.0.1:1/", spec_hash="a" * 64,
            title="Markers", operations=[]))
    async with _admin(eco) as admin:
        manifest, files = await exported(admin, MARKER)
        assert manifest["found"] and manifest["subject"] == MARKER
        (run,) = files["orchestrator/runs.json"]
        assert run["id"] == done["run_id"] and run["input"]["query"] == QUERY
        (execution,) = files["interpreter/executions.json"]
        assert execution["query"] == QUERY and execution["run_id"] == done["run_id"]
        assert [s["id"] for s in files["interpreter/sessions.json"]] == ["s1"]
        usage = files["gateway/usage.json"]
        assert usage and {row["user_id"] for row in usage} == {MARKER}
        assert manifest["services"]["gateway"]["usage"] == len(usage)
        (registered,) = files["orchestrator/registered_services.json"]
        assert registered["name"] == "markers-api" and registered["registered_at"]
        (state,) = files["orchestrator/checkpoints.json"]  # the graph's, with the query
        assert state["run_id"] == run["id"] and QUERY in json.dumps(state["values"])
        assert checkpoint_rows(eco, run["id"]) > 0

        erased = await admin.delete(_path(MARKER))
        assert erased.status_code == 200, erased.text
        receipt = erased.json()
        assert receipt["status"] == "completed" and not receipt["nothing_found"]
        assert receipt["pseudonym"] == pseudonym(eco, MARKER)
        assert MARKER not in erased.text  # the receipt names the pseudonym only
        parts = receipt["services"]
        assert parts["orchestrator"]["erased"]["runs deleted"] == 1
        assert parts["interpreter"]["erased"]["executions deleted"] == 1
        assert parts["orchestrator"]["erased"]["run checkpoints deleted"] == 1
        assert parts["orchestrator"]["erased"]["service registrations pseudonymised"] == 1
        assert checkpoint_rows(eco, run["id"]) == 0
        assert parts["gateway"]["erased"]["usage rows pseudonymised"] == len(usage)
        kept = await admin.get(f"/privacy/requests/{receipt['id']}")
        assert kept.status_code == 200 and kept.json() == receipt

        manifest, files = await exported(admin, MARKER)
        only_pseudonymised(files, receipt["pseudonym"])
        # usage stays for the accounts, under the pseudonym
        assert await column(eco.database_url,
                            "SELECT count(*) FROM gateway_usage WHERE user_id = :p",
                            p=receipt["pseudonym"]) == [len(usage)]
        assert await column(eco.database_url, "SELECT owner FROM orchestrator_services "
                            "WHERE name = 'markers-api'") == [receipt["pseudonym"]]
        assert await column(eco.database_url,
                            "SELECT count(*) FROM orchestrator_privacy_requests "
                            "WHERE subject_sealed IS NOT NULL") == [0]

        again = await admin.delete(_path(MARKER))
        assert again.status_code == 200 and again.json()["id"] != receipt["id"]
        assert again.json()["nothing_found"] and total(again.json()) == 0


async def test_an_unknown_subject_is_an_empty_export_and_a_receipt_of_zeros(
        embedded: Settings) -> None:
    async with _admin(embedded) as admin:
        manifest, files = await exported(admin, "user:nobody/with a slash")
        assert not manifest["found"] and "nothing" in manifest["note"]
        assert set(manifest["services"]) >= set(MINE)
        assert all(rows == [] for rows in files.values())
        erased = await admin.delete(_path("user:nobody/with a slash"))
        assert erased.status_code == 200, erased.text
        assert erased.json()["nothing_found"] and total(erased.json()) == 0
        assert (await admin.get("/privacy/requests/0190aaaa-0000-7000-8000-000000000000")
                ).status_code == 404
        refused = await admin.delete(_path("x"), params={"owned_documents": "transfer"})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "transfer_to"
        for method, path, params in (("GET", _path("a\x00b") + "/export", {}),
                                     ("DELETE", _path("a\x00b"), {}),
                                     ("DELETE", _path("x"), {"transfer_to": "b\x00"}),
                                     ("DELETE", _path("x" * 201), {})):
            bad = await admin.request(method, path, params=params)
            assert bad.status_code == 422, (method, path, bad.text)


async def test_only_a_privacy_admin_may_ask(embedded: Settings) -> None:
    """The person themself, an editor, is refused; so is a token naming no role."""
    for bearer in (issue_token(embedded, MARKER, PEOPLE),
                   issue_token(embedded, "user:ed", [], roles=["editor"]),
                   issue_token(embedded, "user:aud", [], roles=["auditor"])):
        async with httpx.AsyncClient(base_url=embedded.url_for("orchestrator"),
                                     headers={"Authorization": f"Bearer {bearer}"}) as http:
            for method, path in (("GET", _path(MARKER) + "/export"),
                                 ("DELETE", _path(MARKER)),
                                 ("GET", "/privacy/requests/0190aaaa-0000-7000-8000-0000"
                                         "00000000")):
                answer = await http.request(method, path)
                assert answer.status_code == 403, (method, path, answer.text)
                assert "privacy:admin" in answer.json()["detail"]
    async with _admin(embedded) as admin:
        anonymous = await admin.get(_path(MARKER) + "/export", headers={"Authorization": ""})
        assert anonymous.status_code == 401


async def test_a_service_down_leaves_a_partial_erasure_that_completes(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    """On SQLite and PostgreSQL, each service its own app: the interpreter down makes
    the erasure partial (503, Retry-After); up again, a retry completes the same one.
    Down again for a second erasure, the orchestrator's restart completes it."""
    eco, apps = await separate(settings, serve, monkeypatch, database_url)
    await made_by_marker(eco)
    await apps["interpreter"].stop()
    async with _admin(eco) as admin:
        down = await admin.get(_path(MARKER) + "/export")
        assert down.status_code == 503 and down.headers["retry-after"]
        partial = await admin.delete(_path(MARKER))
        assert partial.status_code == 503 and partial.headers["retry-after"]
        receipt = partial.json()["receipt"]
        assert receipt["status"] == "partial"
        assert receipt["services"]["interpreter"]["status"] == "unavailable"
        assert receipt["services"]["orchestrator"]["erased"]["runs deleted"] == 1
        assert partial.headers["location"] == f"/privacy/requests/{receipt['id']}"

        apps["interpreter"] = await serve(create_app("interpreter", eco),
                                          port=eco.port_for("interpreter"))
        retried = await admin.delete(_path(MARKER))
        assert retried.status_code == 200, retried.text
        done = retried.json()
        assert done["id"] == receipt["id"] and done["status"] == "completed"
        assert done["services"]["interpreter"]["erased"]["executions deleted"] == 1
        assert done["services"]["orchestrator"] == receipt["services"]["orchestrator"]

        await made_by_marker(eco)
        await apps["interpreter"].stop()
        second = (await admin.delete(_path(MARKER))).json()["receipt"]
    await apps["orchestrator"].stop()
    apps["interpreter"] = await serve(create_app("interpreter", eco),
                                      port=eco.port_for("interpreter"))
    apps["orchestrator"] = await serve(create_app("orchestrator", eco),
                                       port=eco.port_for("orchestrator"))
    async with _admin(eco) as admin:
        for _ in range(int(GUARD / 0.1)):  # resumed in the background at start-up
            resumed = (await admin.get(f"/privacy/requests/{second['id']}")).json()
            if resumed["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        assert resumed["status"] == "completed", resumed
        assert resumed["services"]["interpreter"]["erased"]["executions deleted"] == 1
        _manifest, files = await exported(admin, MARKER)
        only_pseudonymised(files, resumed["pseudonym"])
    announced = await column(database_url, "SELECT envelope FROM eventbus_events "
                             "WHERE type = :t", t=EVENT_ERASED)
    assert len(announced) == 2  # once per completed erasure, naming the pseudonym only
    assert all(pseudonym(eco, MARKER) in event and MARKER not in event
               for event in announced)


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`llmdocs ARGS` as its own process: a CLI in a thread of this loop's executor would
    hold one of the threads the in-process services need while it waits for them."""
    src = str(Path(llmdocs.__file__).resolve().parents[1])
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmdocs", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={
            **os.environ, **env,
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])})
    out, _ = await asyncio.wait_for(run.communicate(), 600)  # a hang guard
    return run.returncode or 0, out.decode()


async def test_the_cli_exports_and_erases(embedded: Settings, tmp_path: Path) -> None:
    await made_by_marker(embedded)
    env = {"LLMDOCS_ORCHESTRATOR_URL": embedded.url_for("orchestrator"),
           "LLMDOCS_TOKEN": issue_token(embedded, "user:dpo", [], roles=["admin"]),
           "LLMDOCS_LOG_LEVEL": "WARNING"}
    out = tmp_path / "marker.zip"
    code, said = await _cli(env, "privacy", "export", MARKER, "-o", str(out))
    assert code == 0, said
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("manifest.json"))["found"]
        assert QUERY in archive.read("interpreter/executions.json").decode()
    code, said = await _cli(env, "privacy", "erase", MARKER, "--transfer-to", "user:heir",
                            "--json")
    assert code == 0, said
    receipt = json.loads(said[said.index("{"):])
    assert receipt["status"] == "completed" and receipt["owned_documents"] == "transfer"
    assert receipt["transfer_to"] == "user:heir" and MARKER not in said
    code, said = await _cli(env, "privacy", "erase", MARKER)
    assert code == 0 and "nothing was found" in said, said
    code, said = await _cli({**env, "LLMDOCS_TOKEN": issue_token(embedded, MARKER, PEOPLE)},
                            "privacy", "erase", MARKER)
    assert code == 1 and "privacy:admin" in said, said
