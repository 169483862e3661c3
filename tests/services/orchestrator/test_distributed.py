"""The main job distributed: one `llmdocs serve <service>` process per service on the
real PostgreSQL and Redis, real HTTP between them, each registering itself with the
discovery-agent. The processes start once for the module; the model is the real local
one. Covers the request in several formats (sync, a session follow-up, async with the
live event stream), the document, download, provenance and events, a cancelled run,
and specs given by URL (served here, unreachable, not OpenAPI)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cluster import NAMES, SERVICES, Cluster, running_cluster
from ecosystem import resumed_once, store_spec, token
from llmdocs.core.config import Settings
from llmdocs.devservers import PostgresServer, RedisServer, free_port
from llmdocs.examples import user_service_spec
from llmdocs.openapi import spec_hash
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator import apidoc
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.promptstore.client import PromptStoreClient
from services.orchestrator.test_docgen_e2e import (
    OPERATIONS,
    QUERY,
    SHORT_PROSE,
    SPEC,
    assert_generated_once,
    assert_kept_true,
    events_of,
)

RUNNING = {NAMES[key] for key in SERVICES}


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, redis_session_server: RedisServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Seven `llmdocs serve` processes (analysis too) sharing one PostgreSQL database
    and one Redis db."""
    database_url = postgres.create_database("workflow_distributed")
    redis_url = redis_session_server.url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(redis_url).flushdb()
    with running_cluster(tmp_path_factory.mktemp("distributed"), database_url, redis_url,
                         services=(*SERVICES, "analysis"),
                         env=SHORT_PROSE | {"LLMDOCS_WORKFLOW_LEASE_SECONDS": "1.5"}
                         ) as running:
        yield running


@pytest.fixture(scope="module")
def spec_id(cluster: Cluster) -> str:
    return asyncio.run(store_spec(cluster.settings))


def interpreter(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.url_for("interpreter"), timeout=600,
                             headers={"Authorization": f"Bearer {token(settings)}"})


async def sse_kinds(http: httpx.AsyncClient, execution_id: str) -> list[str]:
    async with http.stream("GET", f"/executions/{execution_id}/events") as stream:
        return [line.split(":", 1)[1].strip() async for line in stream.aiter_lines()
                if line.startswith("event:")]


async def test_request_in_several_formats_with_provenance_and_events(
        cluster: Cluster, spec_id: str) -> None:
    settings = cluster.settings
    async with interpreter(settings) as http:
        first = await http.post("/execute-query", json={
            "query": QUERY, "format": "markdown", "user_id": "u1", "session_id": "d1"})
        assert first.status_code == 200, first.text
        # a follow-up in the same session: the same request, now as PDF
        pdf = await http.post("/execute-query", json={
            "query": "now as PDF", "user_id": "u1", "session_id": "d1"})
        assert pdf.status_code == 200, pdf.text
        started = await http.post("/execute-query", json={
            "query": QUERY, "output_format": "zip", "user_id": "u1", "async": True})
        assert started.status_code == 202, started.text
        execution_id = started.json()["execution_id"]
        assert started.headers["location"] == f"/executions/{execution_id}"
        kinds = await sse_kinds(http, execution_id)  # live, while the run goes on
        zipped = (await http.get(f"/executions/{execution_id}")).json()
        results = [first.json(), pdf.json(), zipped]
        files = [(await http.get(f"/documents/{r['document_id']}/download")) for r in results]
        provenance = (await http.get(
            f"/documents/{results[0]['document_id']}/provenance")).json()

    assert [r["status"] for r in results] == ["completed"] * 3
    assert [r["format"] for r in results] == ["markdown", "pdf", "zip"]
    assert kinds[-1] == "completed" and kinds.count("step") >= 8
    assert len({r["document_id"] for r in results}) == 3
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        doc = await docs.get(results[0]["document_id"])
        stored_spec = await docs.get(spec_id)
    markdown = doc.content or ""
    coverage = apidoc.check(markdown, OPERATIONS)
    assert coverage.missing == [] and coverage.invented == []  # every endpoint, none invented
    assert all(f"`{op.method.upper()} {op.path}`" in markdown for op in OPERATIONS)
    assert files[0].status_code == 200 and files[0].content == markdown.encode()
    assert files[1].content.startswith(b"%PDF") and results[1]["filename"].endswith(".pdf")
    archive = zipfile.ZipFile(io.BytesIO(files[2].content))
    assert {"document.md", "document.pdf", "provenance.json"} <= set(archive.namelist())
    assert apidoc.check(archive.read("document.md").decode(), OPERATIONS).complete

    # every provenance field is what ran: the orchestrator's run record, the
    # prompt-store's prompts, the doc-store's spec
    async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
        run = await orch.run(results[0]["run_id"])
        registered = {s.name for s in await orch.list_services()}
        for _ in range(600):  # self-registration runs in the background: a hang guard
            if registered >= RUNNING:
                break
            await asyncio.sleep(0.1)
            registered = {s.name for s in await orch.list_services()}
    execution = provenance["workflow_execution"]
    assert execution["execution_id"] == run.id and run.status == "completed"
    assert [s["name"] for s in execution["steps"]] == [s.name for s in run.steps][
        :len(execution["steps"])]
    assert provenance["services_chain"][:2] == ["interpreter", "orchestrator"]
    assert {"doc-store", "prompt-store", "llm-gateway"} <= set(provenance["services_chain"])
    assert provenance["user_context"] | {"entities": None} == {
        "user_id": "u1", "query": QUERY, "intent": "generate_document", "entities": None,
        "session_id": "d1"}
    async with PromptStoreClient.for_service(settings, token=token(settings)) as prompts:
        for used in provenance["prompts_used"]:
            real = await prompts.prompt(used["prompt_id"])
            assert real.name == used["name"]
            assert real.labels.get(used["label"], real.latest_version) == used["version"]
    calls = provenance["llm_calls"]
    assert len(calls) == len(provenance["prompts_used"]) >= 3
    assert {(c["provider"], c["model"]) for c in calls} == {("local", "smollm2")}
    assert len({c["correlation_id"] for c in calls} - {None}) == 1  # the run's trace
    lineage = provenance["data_lineage"]
    assert lineage["spec"]["canonical_sha256"] == spec_hash(SPEC)
    assert lineage["sources"][0]["content_hash"] == stored_spec.content_hash
    assert provenance["quality_metrics"]["completeness"] == 1.0
    # every service announced itself to the discovery-agent, which registered it
    assert registered >= RUNNING, registered

    events = await events_of(settings)  # read back from the Redis stream
    for result in results:
        assert_generated_once(events, result["run_id"])


def spec_server() -> Starlette:
    """A spec at a URL, and a page at another that is no spec at all."""
    async def spec(_: Any) -> Response:
        return PlainTextResponse(user_service_spec(), media_type="application/yaml")

    async def page(_: Any) -> Response:
        return PlainTextResponse("<html><body>Hello</body></html>", media_type="text/html")

    return Starlette(routes=[Route("/openapi.yaml", spec), Route("/about", page)])


async def test_cancel_and_specs_by_url(cluster: Cluster, spec_id: str, serve: Any) -> None:
    settings = cluster.settings
    site = await serve(spec_server())
    async with interpreter(settings) as http:
        # an API of its own: its prompts (the title is in each) are in no cache, so the
        # run is still writing when the cancel comes (once it stores, a cancel is
        # refused: test_runs.py)
        async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
            own = await docs.put(user_service_spec().replace(
                "title: User Service", "title: Cancelled Service", 1), format="yaml",
                title="Cancelled Service OpenAPI", tags=["openapi"])
        started = await http.post("/execute-query", json={
            "query": QUERY, "spec_document_id": own.document_id, "format": "markdown",
            "user_id": "u1", "async": True})
        execution_id, run_id = started.json()["execution_id"], started.json()["run_id"]
        async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
            while "outline" not in {s.name for s in (await orch.run(run_id)).steps}:
                await asyncio.sleep(0.05)
        cancelled = await http.post(f"/executions/{execution_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        again = await http.post(f"/executions/{execution_id}/cancel")
        assert again.status_code == 409

        # a whole run from a spec at a URL: by its end the cancelled run would have
        # finished too, had it gone on
        by_url = await http.post("/execute-query", json={
            "query": "Create API documentation", "spec_url": site.url + "/openapi.yaml",
            "format": "txt", "user_id": "u1"})
        assert by_url.status_code == 200, by_url.text
        text = (await http.get(f"/documents/{by_url.json()['document_id']}/download")).text
        lineage = by_url.json()["provenance"]["data_lineage"]
        after = (await http.get(f"/executions/{execution_id}")).json()

        unreachable = await http.post("/execute-query", json={
            "query": "Create API documentation",
            "spec_url": f"http://127.0.0.1:{free_port()}/openapi.json"})
        not_openapi = await http.post("/execute-query", json={
            "query": "Create API documentation", "spec_url": site.url + "/about"})

    assert all(f"{op.method.upper()} {op.path}" in text for op in OPERATIONS)
    assert lineage["spec"]["url"] == site.url + "/openapi.yaml"
    assert lineage["spec"]["canonical_sha256"] == spec_hash(SPEC) and lineage["sources"] == []
    assert after["status"] == "cancelled" and after["document_id"] is None
    assert [s["name"] for s in after["steps"]] == [s["name"] for s in cancelled.json()[
        "steps"]] and "store" not in {s["name"] for s in after["steps"]}
    async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
        assert (await docs.list(**{"metadata.run_id": run_id})).items == []
    events = [e for e in await events_of(settings) if (e.data or {}).get("run_id") == run_id]
    kinds = [e.type for e in events]  # the two services' events interleave as they may
    assert [k for k in kinds if k.startswith("llmdocs.workflow.")] == [
        "llmdocs.workflow.started", "llmdocs.workflow.failed"]
    assert [k for k in kinds if k.startswith("llmdocs.execution.")] == [
        "llmdocs.execution.accepted", "llmdocs.execution.cancelled"]
    assert events[-1].data["error"] == "cancelled on request"

    assert unreachable.status_code == 422 and "unreachable" in unreachable.json()["detail"]
    assert not_openapi.status_code == 422
    assert "does not serve an OpenAPI spec" in not_openapi.json()["detail"]


async def test_orchestrator_killed_mid_run_resumes_from_postgres(
        cluster: Cluster, spec_id: str) -> None:
    """SIGKILL the orchestrator process while the write step waits on the model; started
    again, it claims the run once its lease ran out and resumes it from the PostgreSQL
    checkpoint, storing exactly one document."""
    settings = cluster.settings
    async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
        run = await orch.start_run("document-generation", {  # a query no cache holds
            "query": f"{QUERY}, through a crash", "service": "user service",
            "format": "csv"}, user_id="u1")
        while "outline" not in {s.name for s in (await orch.run(run.id)).steps}:
            await asyncio.sleep(0.05)
    killed_at = datetime.now(UTC)
    await asyncio.to_thread(cluster.restart, "orchestrator")
    await resumed_once(settings, run.id, killed_at)


async def test_a_changed_spec_keeps_its_document_true(cluster: Cluster) -> None:
    """Embedded mode's end to end, with analysis a process of its own: it sees the new
    spec version on Redis and the refresh runs across the processes."""
    await assert_kept_true(cluster.settings)
