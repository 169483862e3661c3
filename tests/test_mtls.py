"""Distributed mode over mutual TLS (issue 23): every service its own process with
`LLMDOCS_TLS_DIR` set, the main job (request → document) through every hop, and every
service refusing a plain connection and a TLS one without a client certificate. The
model is the local instant fake (tests/services/orchestrator/fakellm.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cluster import NAMES, running_cluster
from ecosystem import NEEDED, store_spec, token
from llmdocs.cli import app as cli_app
from llmdocs.core.tls import client_context
from llmdocs.devservers import PostgresServer, RedisServer
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.interpreter.test_interpreter_input import QUERY
from services.orchestrator.fakellm import fake_llm, provider_env
from waiting import eventually

REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


def _refuses_plain_and_anonymous(port: int, ca: Path) -> None:
    with pytest.raises(REFUSED):
        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=10)
    anonymous = ssl.create_default_context(cafile=ca)  # trusts the CA, has no certificate
    with pytest.raises(REFUSED):
        httpx.get(f"https://127.0.0.1:{port}/health/live", verify=anonymous, timeout=10)


async def test_the_main_job_runs_over_mutual_tls_and_nothing_plain_is_answered(
        postgres: PostgresServer, redis_session_server: RedisServer, serve: Any,
        tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    made = CliRunner().invoke(cli_app, ["certs", "init", "--dir", str(certs)])
    assert made.exit_code == 0, made.output
    (tmp_path / "cluster").mkdir()
    model = await serve(fake_llm(0.0))
    redis_url = redis_session_server.url.rsplit("/", 1)[0] + "/9"
    env = {**provider_env(model.url), "LLMDOCS_TLS_DIR": str(certs)}
    services = (*NEEDED, "discovery")
    with running_cluster(tmp_path / "cluster", postgres.create_database("mtls"), redis_url,
                         services=services, env=env) as cluster:
        settings = cluster.settings
        for port in cluster.ports.values():
            _refuses_plain_and_anonymous(port, certs / "ca.pem")
        await store_spec(settings)  # the CLI's certificate, to the doc-store
        verify = client_context(settings, None) or True
        async with httpx.AsyncClient(base_url=settings.url_for("interpreter"), timeout=120,
                                     verify=verify, headers={
                                         "Authorization": f"Bearer {token(settings)}"}
                                     ) as http:
            answer = await http.post("/execute-query",
                                     json={"query": QUERY, "format": "markdown"})
            assert answer.status_code == 200, (answer.text, cluster.log())
            result = answer.json()
            health = {name: (await http.get(f"https://127.0.0.1:{port}/health")).json()
                      for name, port in cluster.ports.items()}
        async with DocStoreClient.for_service(settings, token=token(settings)) as docs:
            document = await docs.get(result["document_id"])
        async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
            async def all_registered() -> bool:
                # the discovery-agent fetched each one's spec, presenting its certificate
                registered = {s.name for s in await orch.list_services()}
                return registered >= {NAMES[k] for k in services}

            await eventually(all_registered, attempts=12_000)  # a hang guard: 120 s
        log = cluster.log()

    assert settings.url_for("interpreter").startswith("https://")
    assert result["status"] == "completed", result
    assert "/users" in (document.content or "")
    # each service reached the services it calls that run here (over TLS: nothing else
    # answers); the orchestrator also calls, for privacy requests, services not started
    assert {report["service"] for report in health.values()} == {NAMES[k] for k in services}
    # (the gateway is degraded: the fake model has no health check of its own)
    down = {(name, d["name"]): d for name, report in health.items()
            for d in report["dependencies"]
            if d["kind"] == "service" and d["name"] in services
            and d["status"] not in ("up", "degraded")}
    assert not down, ({k: d.get("error") for k, d in down.items()}, log)
