"""One request, followed end to end: its spans reach a real OTLP/HTTP receiver on
loopback as one trace through every service (each workflow step, the model call with
its GenAI attributes, the doc-store, database statements), and its logs and events
reach the log-collector under its correlation id, an async execution's end included
with no one asking. Real services over HTTP; the model
is the local fake speaking the OpenAI wire format."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecosystem import start_services, store_spec, token
from llmdocs.core import tracing
from llmdocs.core.config import Settings
from llmdocs.core.db import Database
from llmdocs.core.events.factory import create_event_bus
from llmdocs.core.ids import new_id
from llmdocs.services import create_app
from services.orchestrator.fakellm import fake_llm, provider_env

QUERY = "Create API documentation for user service"
GUARD = 60.0  # a hang guard, not a performance bound
STEPS = ("analyze", "choose_template", "gather_context", "outline", "write", "review",
         "format", "store")


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def otlp_receiver(spans: list[ReceivedSpan]) -> Starlette:
    """Takes OTLP/HTTP protobuf exports at /v1/traces, as a collector does."""
    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                spans.extend(ReceivedSpan(
                    str(resource["service.name"]), s.name, s.trace_id.hex(), s.span_id.hex(),
                    s.parent_span_id.hex(), {a.key: _value(a.value) for a in s.attributes})
                    for s in scope.spans)
        return Response(ExportTraceServiceRequest().SerializeToString(),
                        media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])


async def eventually(probe: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(GUARD):
        while not await probe():
            await asyncio.sleep(0.1)


@pytest.fixture(params=["embedded", "distributed"])
def deployed(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """SQLite and the SQL bus, or PostgreSQL with Redis for events and cache."""
    if request.param == "embedded":
        return settings
    redis = request.getfixturevalue("redis_url")
    return settings.model_copy(update={"database_url": request.getfixturevalue("pg_url"),
                                       "events_url": redis, "cache_url": redis})


async def test_one_request_is_one_trace_and_its_logs_arrive(
        deployed: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spans: list[ReceivedSpan] = []
    receiver = await serve(otlp_receiver(spans))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within a tenth of a second
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    traced = deployed.model_copy(update={"otel_exporter": "otlp",
                                         "otel_endpoint": f"{receiver.url}/v1/traces"})
    eco = await start_services(traced, serve)
    await serve(create_app("logcollector", eco), port=eco.port_for("logcollector"))
    await store_spec(eco)

    auth = {"Authorization": f"Bearer {token(eco)}"}
    async with httpx.AsyncClient(base_url=eco.url_for("interpreter"), headers=auth,
                                 timeout=GUARD) as interpreter:
        answer = await interpreter.post("/execute-query", json={"query": QUERY},
                                        headers={"X-Correlation-ID": "req-telemetry"})
    assert answer.status_code == 200, answer.text
    trace_id = answer.headers["traceparent"].split("-")[1]

    def of_trace() -> list[ReceivedSpan]:
        return [s for s in spans if s.trace_id == trace_id]

    async def stored_by_docstore() -> bool:
        return any(s.service == "llmdocs-docstore" and s.name == "POST /documents"
                   for s in of_trace())

    async def one_tree() -> bool:
        # a parent span ends (and is exported) after its children: under load, after the
        # answer; a parent that never arrives fails the wait
        await asyncio.to_thread(tracing.flush)  # what the services did after the answer
        ids = {s.span_id for s in of_trace()}
        return all(not s.parent_id or s.parent_id in ids for s in of_trace())

    await eventually(stored_by_docstore)
    await eventually(one_tree)
    mine = of_trace()
    by_id = {s.span_id: s for s in mine}
    [root] = [s for s in mine if not s.parent_id]
    assert (root.service, root.name) == ("llmdocs-interpreter", "POST /execute-query")
    services = {s.service for s in mine}
    assert {"llmdocs-interpreter", "llmdocs-orchestrator", "llmdocs-gateway",
            "llmdocs-promptstore", "llmdocs-docstore"} <= services
    steps = {s.attributes["llmdocs.workflow.step"] for s in mine if s.name.startswith("step ")}
    assert set(STEPS) <= steps
    [call, *_] = [s for s in mine if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert call.service == "llmdocs-gateway" and call.name == "chat fake"
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert call.attributes["gen_ai.request.model"] == "fake"
    assert call.attributes["gen_ai.response.model"] == "fake"
    assert call.attributes["gen_ai.usage.input_tokens"] == 50  # what the fake reports
    assert call.attributes["gen_ai.usage.output_tokens"] == 12
    assert by_id[call.parent_id].service == "llmdocs-gateway"  # under its server span
    outgoing = [s for s in mine if s.attributes.get("peer.service") == "docstore"]
    assert outgoing and all(by_id[s.parent_id].service != "llmdocs-docstore"
                            for s in outgoing)
    databases = {s.attributes.get("db.system.name") for s in mine}
    if deployed.embedded:
        assert "sqlite" in databases
    else:
        assert {"postgresql", "redis"} <= databases  # redis: the cache's calls
        assert any(s.attributes.get("messaging.system") == "redis" for s in mine)

    async with httpx.AsyncClient(base_url=eco.url_for("logcollector"), headers=auth,
                                 timeout=GUARD) as collector:
        async def correlated() -> dict[str, Any] | None:
            found = await collector.get("/correlations/req-telemetry")
            if found.status_code != 200:
                return None
            timeline: dict[str, Any] = found.json()
            kinds = {(e["kind"], e["service"], e["summary"]) for e in timeline["timeline"]}
            wanted = {("event", "interpreter", "llmdocs.execution.accepted"),
                      ("event", "interpreter", "llmdocs.execution.completed"),
                      ("log", "interpreter", "request")}  # its last line
            return timeline if wanted <= kinds else None

        async def arrived() -> bool:
            return await correlated() is not None

        await eventually(arrived)
        timeline = await correlated()
        assert timeline is not None
        assert trace_id in timeline["trace_ids"]
        logs = (await collector.get("/logs", params={"correlation_id": "req-telemetry",
                                                     "limit": 1000})).json()["items"]
    served = {(r["service"], r["attributes"].get("path")) for r in logs
              if r["message"] == "request"}
    assert ("interpreter", "/execute-query") in served
    assert any(service == "doc-store" for service, _ in served)
    assert all(r["trace_id"] == trace_id for r in logs if r["message"] == "request")
    await asyncio.to_thread(tracing.flush)  # none left for a receiver gone


async def test_an_async_executions_end_is_announced_once_with_no_one_asking(
        deployed: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An execution run in the background and never polled: its run's end reaches the
    interpreter over the bus and is announced once, under the starting request's
    correlation id. A second delivery of that end, and a later poll, announce nothing
    more, and the poll finds the end kept."""
    model = await serve(fake_llm(0.0))
    for key, value in provider_env(model.url).items():
        monkeypatch.setenv(key, value)
    eco = await start_services(deployed, serve)
    await serve(create_app("logcollector", eco), port=eco.port_for("logcollector"))
    await store_spec(eco)
    auth = {"Authorization": f"Bearer {token(eco)}"}
    async with httpx.AsyncClient(base_url=eco.url_for("interpreter"), headers=auth,
                                 timeout=GUARD) as interpreter, \
            httpx.AsyncClient(base_url=eco.url_for("logcollector"), headers=auth,
                              timeout=GUARD) as collector:
        async def announced(correlation_id: str) -> list[str]:
            found = await collector.get(f"/correlations/{correlation_id}")
            return [e["summary"] for e in found.json()["timeline"] if e["kind"] == "event"
                    ] if found.status_code == 200 else []

        async def started_unpolled(correlation_id: str) -> dict[str, Any]:
            """Start an execution in the background; wait for its end's announcement."""
            started = await interpreter.post("/execute-query", json={
                "query": QUERY, "async": True}, headers={"X-Correlation-ID": correlation_id})
            assert started.status_code == 202, started.text

            async def ended() -> bool:
                return "llmdocs.execution.completed" in await announced(correlation_id)

            await eventually(ended)
            execution: dict[str, Any] = started.json()
            return execution

        first = await started_unpolled("req-async")
        await redeliver_end(eco, first["run_id"])
        polled = await interpreter.get(f"/executions/{first['execution_id']}",
                                       headers={"X-Correlation-ID": "req-poll"})
        assert polled.json()["status"] == "completed", polled.text
        # on the bus after the second delivery and the poll: once this end is announced
        # the interpreter has handled that delivery, and the collector holds whatever
        # either announced
        await started_unpolled("req-after")
        ends = await announced("req-async")
        assert ends.count("llmdocs.execution.accepted") == 1
        assert ends.count("llmdocs.execution.completed") == 1
        assert not [e for e in await announced("req-poll")
                    if e.startswith("llmdocs.execution.")]


async def redeliver_end(settings: Settings, run_id: str) -> None:
    """The run's end on the bus again, as a redelivery hands it over (under a new id:
    the SQL bus keeps one event per id, and the interpreter must not rely on ids)."""
    database = Database(settings.database_url)
    bus = create_event_bus(settings, database)
    await bus.start()
    try:
        [end] = [e for _, e in await bus.replay(limit=10_000)
                 if e.type == "llmdocs.workflow.completed" and e.data["run_id"] == run_id]
        await bus.publish(end.model_copy(update={"id": new_id()}))
    finally:
        await bus.close()
        await database.dispose()
