"""A crash mid-run: `llmdocs up` is killed with SIGKILL while the write step waits on
the model; started again, it claims the orphaned run (its lease ran out), resumes from
the last checkpoint without repeating finished steps, and stores exactly one document."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from ecosystem import resumed_once, store_spec, token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import fake_llm, provider_env


async def start_up(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "llmdocs", "up", *args], env=env,
                               stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['LLMDOCS_INTERPRETER_PORT']}/health"
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("llmdocs up exited:\n" + log.read_text()[-3000:])
            try:
                if (await http.get(url, params={"deep": "false"})).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("llmdocs up did not start")


def environment(tmp_path: Path, fake_url: str) -> tuple[dict[str, str], Settings]:
    """`llmdocs up` in its own data dir and ports, its model calls going to the fake."""
    ports = {f"{k}_port": free_port() for k in SERVICE_NAMES}
    env = {**os.environ, **provider_env(fake_url),
           **{f"LLMDOCS_{k.upper()}": str(v) for k, v in ports.items()},
           "LLMDOCS_DATA_DIR": str(tmp_path / "data"), "LLMDOCS_JWT_SECRET": "c" * 48,
           "LLMDOCS_WORKFLOW_LEASE_SECONDS": "1.5", "LLMDOCS_LOG_LEVEL": "WARNING",
           "LLMDOCS_DISCOVERY_DISCOVER_ON_START": "false",
           "LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS": "0"}
    settings = Settings(data_dir=tmp_path / "data", jwt_secret=SecretStr("c" * 48)
                        ).model_copy(update=ports)
    return env, settings


async def test_killed_run_resumes_and_stores_once(tmp_path: Path, serve: Any) -> None:
    fake = await serve(fake_llm(1.5))
    env, settings = environment(tmp_path, fake.url)
    log = tmp_path / "up.log"
    first = await start_up(env, log)
    try:
        await store_spec(settings)
        async with OrchestratorClient.for_service(settings, token=token(settings)) as o:
            run = await o.start_run("document-generation", {
                "query": "Create API documentation for user service",
                "service": "user service"}, user_id="u1")
            while "outline" not in {s.name for s in (await o.run(run.id)).steps}:
                await asyncio.sleep(0.05)
    finally:
        killed_at = datetime.now(UTC)
        first.send_signal(signal.SIGKILL)  # mid-write: the model is still answering
        first.wait(10)
    second = await start_up(env, log)
    try:
        await resumed_once(settings, run.id, killed_at)
    finally:
        second.terminate()
        second.wait(20)

async def test_worked_example_ask_and_runs_commands(tmp_path: Path, serve: Any) -> None:
    """`llmdocs up --example` documents the shipped spec; `llmdocs ask` saves a PDF with a
    live view of the steps; `llmdocs runs list|show` find both runs."""
    fake = await serve(fake_llm(0.0))
    env, _ = environment(tmp_path, fake.url)
    log = tmp_path / "up.log"
    process = await start_up(env, log, "--example")
    try:
        for _ in range(300):
            if "quality" in log.read_text():
                break
            await asyncio.sleep(0.1)
        printed = log.read_text()
        out = tmp_path / "out.pdf"

        def cli(*args: str) -> str:
            done = subprocess.run([sys.executable, "-m", "llmdocs", *args], env=env,
                                  capture_output=True, timeout=120, cwd=tmp_path)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            return done.stdout.decode()

        asked = await asyncio.to_thread(
            cli, "ask", "Create API documentation for user service", "--format", "pdf",
            "-o", str(out))
        listed = await asyncio.to_thread(cli, "runs", "list")
        run_id = printed.split("run ", 1)[1].split(",", 1)[0]
        shown = await asyncio.to_thread(cli, "runs", "show", run_id)
    finally:
        process.terminate()
        process.wait(20)
    assert "/download" in printed and "fake/fake" in printed
    assert "completeness 1.0, truthfulness 1.0" in printed
    assert out.read_bytes().startswith(b"%PDF")
    assert any(line.startswith("Saved ") for line in asked.splitlines())  # own line
    assert "write" in asked and "review" in asked  # the live step table
    assert listed.count("completed") >= 2
    assert f'"id": "{run_id}"' in shown and '"status": "completed"' in shown
