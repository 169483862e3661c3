"""The image's HEALTHCHECK passes while the container's service answers, and fails once
nothing does."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app


async def _check(ports: dict[str, int], cwd: Path) -> int:
    """The HEALTHCHECK command's exit code, run as Docker runs it (a new process), while
    this loop goes on serving."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env |= {f"LLMDOCS_{key.upper()}_PORT": str(port) for key, port in ports.items()}
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmdocs.healthcheck", env=env, cwd=cwd)
    return await asyncio.wait_for(check.wait(), 60)


async def test_healthy_while_its_service_answers_and_not_after(
        settings: Settings, serve: Any, tmp_path: Path) -> None:
    ports = {key: free_port() for key in SERVICE_NAMES}  # none of them another's server
    running = await serve(create_app("docstore", settings), port=ports["docstore"])
    assert await _check(ports, tmp_path) == 0
    await running.stop()
    assert await _check(ports, tmp_path) == 1
