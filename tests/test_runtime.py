"""`llmdocs up` and `llmdocs serve` as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmdocs.core.config import SERVICE_NAMES
from llmdocs.devservers import free_port

SECRET = "runtime-test-secret-" + "y" * 30
START_GUARD = 90.0  # a hang guard, not a performance bound
Starter = Callable[[list[str], dict[str, str], str], "subprocess.Popen[bytes]"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = dict(os.environ)
    values.update({f"LLMDOCS_{key.upper()}_PORT": str(free_port()) for key in SERVICE_NAMES})
    values.update({"LLMDOCS_DATA_DIR": str(tmp_path / "data"), "LLMDOCS_JWT_SECRET": SECRET,
                   "LLMDOCS_LOG_FORMAT": "console"})
    return values


def llmdocs(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmdocs", *args]


def urls(env: dict[str, str]) -> dict[str, str]:
    return {key: f"http://127.0.0.1:{env[f'LLMDOCS_{key.upper()}_PORT']}" for key in SERVICE_NAMES}


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + START_GUARD
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = Path(str(proc.log_path)).read_text()  # type: ignore[attr-defined]
            raise AssertionError(f"process exited with {proc.returncode}:\n{output}")
        try:
            answer = httpx.get(f"{url}/health", timeout=5)
            if answer.status_code == 200 and answer.json()["status"] == "healthy":
                report: dict[str, Any] = answer.json()
                return report
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy after {START_GUARD}s")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    procs: list[subprocess.Popen[bytes]] = []

    def run(args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("wb")
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
        proc.log_path = tmp_path / log  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_embedded_serves_all_and_stops_cleanly(
    start: Starter, env: dict[str, str], tmp_path: Path
) -> None:
    del env["LLMDOCS_JWT_SECRET"]  # as `make run`: the key is made in the data dir
    proc = start(llmdocs("up"), env, "up.log")
    started = time.monotonic()
    for key, url in urls(env).items():
        report = wait_healthy(url, proc)
        assert report["service"] in (key, {"gateway": "llm-gateway",
                                            "discovery": "discovery-agent",
                                            "docstore": "doc-store",
                                            "promptstore": "prompt-store",
                                            "logcollector": "log-collector"}.get(key))
    print(f"all seven healthy after {time.monotonic() - started:.1f}s")
    assert (tmp_path / "data" / "llmdocs.db").exists()

    deadline = time.monotonic() + 10
    while "Access token" not in (tmp_path / "up.log").read_text():
        assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
        time.sleep(0.05)
    output = (tmp_path / "up.log").read_text()
    for url in urls(env).values():
        assert url in output
    token = output.split("Access token (admin, 24 h):")[1].split()[0]
    info = httpx.get(f"{urls(env)['docstore']}/info",
                     headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 200 and info.json()["mode"] == "embedded"

    health = subprocess.run(llmdocs("health", "--json"), env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert health.returncode == 0, health.stdout + health.stderr
    reports = json.loads(health.stdout)
    assert {r["status"] for r in reports} == {"healthy"} and len(reports) == 7

    issued = subprocess.run(llmdocs("token", "--scopes", "docs:read"), env=env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    scoped = issued.stdout.strip()
    headers = {"Authorization": f"Bearer {scoped}"}
    assert httpx.get(f"{urls(env)['docstore']}/info", headers=headers).status_code == 200
    assert httpx.get(f"{urls(env)['gateway']}/info", headers=headers).status_code == 403

    recorded = Path(env["XDG_STATE_HOME"]) / "llmdocs" / "instance.json"
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    anywhere = {k: v for k, v in env.items()
                if not (k.startswith("LLMDOCS_") and k.endswith(("_PORT", "_DATA_DIR")))}
    (tmp_path / "elsewhere").mkdir()
    found = subprocess.run(llmdocs("health", "--json"), env=anywhere, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path / "elsewhere")
    assert found.returncode == 0, found.stdout + found.stderr
    assert {r["url"] for r in json.loads(found.stdout)} == set(urls(env).values())
    assert not (tmp_path / "elsewhere" / ".llmdocs").exists()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{urls(env)['docstore']}/health")
    assert not recorded.exists()


def test_serve_replica_beside_up_on_postgres_and_redis(
    start: Starter, env: dict[str, str], pg_url: str, redis_url: str
) -> None:
    env.update({"LLMDOCS_DATABASE_URL": pg_url, "LLMDOCS_EVENTS_URL": redis_url,
                "LLMDOCS_CACHE_URL": redis_url})
    up = start(llmdocs("up"), env, "up.log")
    for url in urls(env).values():
        wait_healthy(url, up)
    replica_port = free_port()
    replica = start(llmdocs("serve", "doc-store", "--port", str(replica_port)),
                    env, "replica.log")
    report = wait_healthy(f"http://127.0.0.1:{replica_port}", replica)
    deps = {d["name"]: d["status"] for d in report["dependencies"]}
    assert deps["database"] == deps["events"] == "up"
    assert set(deps.values()) == {"up"}
    first = wait_healthy(urls(env)["docstore"], up)
    assert first["service"] == report["service"] == "doc-store"

    headers = {"Authorization": "Bearer " + subprocess.run(
        llmdocs("token"), env=env, capture_output=True, text=True, check=True).stdout.strip()}
    info = httpx.get(f"http://127.0.0.1:{replica_port}/info", headers=headers).json()
    assert info["mode"] == "distributed"

    unknown = subprocess.run(llmdocs("serve", "no-such-service"), env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "unknown service" in unknown.stderr


def test_up_with_a_port_taken_exits_saying_which(
    start: Starter, env: dict[str, str], tmp_path: Path
) -> None:
    """A service that cannot listen stops the whole ecosystem with the reason, rather
    than leaving the others serving and `up` waiting forever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["LLMDOCS_DOCSTORE_PORT"])))
        taken.listen()
        proc = start(llmdocs("up"), env, "up.log")
        assert proc.wait(timeout=START_GUARD) != 0
    output = (tmp_path / "up.log").read_text()
    assert f"could not serve on 127.0.0.1:{env['LLMDOCS_DOCSTORE_PORT']}" in output
