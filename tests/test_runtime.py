"""`llmdocs up` and `llmdocs serve` as real processes."""

from __future__ import annotations

import json
import logging
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.runtime import not_a_request_line

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
    print(f"all ten healthy after {time.monotonic() - started:.1f}s")
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
    link = output.split("Sign in to the portal (this link works once):")[1].split()[0]
    assert link.startswith(f"{urls(env)['web']}/login?token=")
    signed_in = httpx.get(link)
    assert signed_in.status_code == 303 and "llmdocs_session" in signed_in.cookies

    health = subprocess.run(llmdocs("health", "--json"), env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert health.returncode == 0, health.stdout + health.stderr
    reports = json.loads(health.stdout)
    assert {r["status"] for r in reports} == {"healthy"} and len(reports) == len(SERVICE_NAMES)

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
    foreign = subprocess.run(llmdocs("docs", "list"), capture_output=True, text=True,
                             env={**env, "LLMDOCS_JWT_SECRET": "another-" + "k" * 40},
                             timeout=60, cwd=tmp_path)
    assert foreign.returncode == 1
    assert "401 The access token is signed with another key" in " ".join(foreign.stderr.split())

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


def read_until_closed(terminal: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the other end is closed: the process has ended
            return
        if not chunk:
            return
        into.extend(chunk)


def test_up_in_a_terminal_logs_for_a_person_and_everything_to_the_log_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    """In a terminal, `up` logs no JSON and no line per request or migration, which
    buried what it prints; `--log-file` still gets every line, requests too, as JSON."""
    del env["LLMDOCS_LOG_FORMAT"]
    log_file = tmp_path / "all.jsonl"
    terminal, child = pty.openpty()
    proc = subprocess.Popen(llmdocs("up", "--service", "doc-store", "--log-file", str(log_file)),
                            env=env, stdin=child, stdout=child, stderr=child, cwd=tmp_path)
    proc.log_path = log_file  # type: ignore[attr-defined]
    os.close(child)
    shown = bytearray()
    reader = threading.Thread(target=read_until_closed, args=(terminal, shown))
    reader.start()
    try:
        url = urls(env)["docstore"]
        wait_healthy(url, proc)
        token = issue_token(Settings(jwt_secret=SecretStr(SECRET)), "user:t", ["*"])
        info = httpx.get(f"{url}/info", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join()
        os.close(terminal)
    console = shown.decode(errors="replace")
    assert "is up" in console and "Press Ctrl-C to stop." in console
    assert '"event"' not in console and "Running upgrade" not in console
    assert "/info" not in console
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(line["event"] == "request" and line["path"] == "/info"
               and line["status"] == 200 for line in lines)
    assert any(line["logger"] == "alembic.runtime.migration" for line in lines)


def test_at_a_terminal_only_request_and_migration_chatter_is_held_back() -> None:
    def line(logger: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(logger, level, __file__, 1, "said", None, None)

    assert not not_a_request_line(line("llmdocs.http", logging.INFO))
    assert not not_a_request_line(line("httpx", logging.INFO))
    assert not not_a_request_line(line("alembic.runtime.migration", logging.INFO))
    assert not_a_request_line(line("llmdocs.http", logging.WARNING))
    assert not_a_request_line(line("llmdocs.runtime", logging.INFO))
