"""Each service starts with exactly the environment its pod gets from the chart, and a
pod that lets Kubernetes' service links in is refused with the reason."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.chart import SECRET, of_kind, pod_environment, render
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app, resolve


def _enter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """This process's environment as the pod's: no LLMDOCS_* of ours, no .env."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LLMDOCS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


async def test_every_service_starts_and_answers_its_probes_with_its_pod_environment(
        pg_url: str, redis_url: str, serve: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render({"eventsUrl": redis_url, "cacheUrl": redis_url})
    secret = SECRET | {"LLMDOCS_DATABASE_URL": pg_url}
    for name, deployment in of_kind(objects, "Deployment").items():
        env = pod_environment(deployment, objects, secret)
        _enter(monkeypatch, tmp_path, env)
        settings = Settings()
        assert not settings.embedded and settings.events_url == redis_url
        running = await serve(create_app(resolve(name).key, settings))
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        async with httpx.AsyncClient(base_url=running.url) as http:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                answer = await http.get(container[probe]["httpGet"]["path"])
                assert answer.status_code == 200, (name, probe, answer.text)
        await running.stop()


async def test_the_exec_probes_of_tls_pods_pass_while_the_service_answers(
        settings: Settings, serve: Any, tmp_path: Path) -> None:
    """Each probe command, run as the kubelet runs it (a new process in the container),
    on a doc-store listening where the pod's would (plain here: the certificates are
    the TLS tests' business)."""
    deployment = of_kind(render({"tls": {"enabled": True, "existingSecret": "certs"}}),
                         "Deployment")["doc-store"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {key: free_port() for key in SERVICE_NAMES}  # none of them another's server
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env |= {f"LLMDOCS_{key.upper()}_PORT": str(port) for key, port in ports.items()}

    async def probe(name: str) -> int:
        command = container[name]["exec"]["command"]
        assert command[0] == "python"
        check = await asyncio.create_subprocess_exec(sys.executable, *command[1:], env=env,
                                                     cwd=tmp_path)
        return await asyncio.wait_for(check.wait(), 60)

    running = await serve(create_app("docstore", settings), port=ports["docstore"])
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert await probe(name) == 0, name
    await running.stop()
    assert await probe("livenessProbe") == 1


def _with_service_links(deployment: dict[str, Any]) -> dict[str, Any]:
    """The deployment as Kubernetes runs a pod spec that leaves service links on."""
    pod = deployment["spec"]["template"]["spec"]
    pod = {k: v for k, v in pod.items() if k != "enableServiceLinks"}
    return {**deployment, "spec": {**deployment["spec"], "template": {"spec": pod}}}


def test_service_links_of_a_release_named_llmdocs_are_refused_with_the_reason(
        tmp_path: Path) -> None:
    objects = render()
    deployment = _with_service_links(of_kind(objects, "Deployment")["doc-store"])
    env = pod_environment(deployment, objects, SECRET)
    assert env["LLMDOCS_ORCHESTRATOR_PORT"].startswith("tcp://10.96.")
    env |= {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)}
    started = subprocess.run(
        [sys.executable, "-c", "from llmdocs.cli import main; main()", "serve", "doc-store"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert started.returncode == 2
    assert "Traceback" not in started.stderr
    assert "LLMDOCS_ORCHESTRATOR_PORT='tcp://10.96." in started.stderr
    assert "service link" in started.stderr and "enableServiceLinks: false" in started.stderr
    assert "LLMDOCS_INTERPRETER_PORT" in started.stderr  # every offending variable is named

