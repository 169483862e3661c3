"""`GET /health` as docs/services.md describes it: a critical dependency down makes the
service `unhealthy` (it cannot do its job); any other down makes it `degraded`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import psutil

Status = Literal["healthy", "degraded", "unhealthy"]
Probe = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class DependencyCheck:
    name: str
    probe: Probe  # raises (or times out) when the dependency is down
    critical: bool = False
    kind: str = "internal"  # database | events | service | provider ...


async def _run(check: DependencyCheck, seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check.probe(), seconds)
    except Exception as exc:  # any failure of a probe is a finding, not an error
        return {
            "name": check.name, "kind": check.kind, "status": "down",
            "critical": check.critical,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__,
        }
    status = "up"
    if isinstance(result, dict) and result.get("status") in ("degraded", "unhealthy"):
        status = str(result["status"])
    return {"name": check.name, "kind": check.kind, "status": status,
            "critical": check.critical,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def overall(dependencies: list[dict[str, Any]]) -> Status:
    if any(d["status"] == "down" and d["critical"] for d in dependencies):
        return "unhealthy"
    if any(d["status"] != "up" for d in dependencies):
        return "degraded"
    return "healthy"


_process = psutil.Process()


def resources() -> dict[str, Any]:
    with _process.oneshot():
        return {
            "cpu_percent": _process.cpu_percent(interval=None),
            "rss_bytes": _process.memory_info().rss,
            "open_files": _process.num_fds(),
            "threads": _process.num_threads(),
        }


async def health_report(
    service: str, version: str, started_at: float, checks: list[DependencyCheck],
    seconds: float,
) -> dict[str, Any]:
    dependencies = list(await asyncio.gather(*(_run(c, seconds) for c in checks)))
    return {
        "status": overall(dependencies),
        "service": service,
        "version": version,
        "uptime_seconds": round(time.monotonic() - started_at, 3),
        "dependencies": dependencies,
        "resources": resources(),
    }
