"""Distributed mode for tests and benchmarks: one `llmdocs serve` process per service
(or several replicas of one), sharing a PostgreSQL database and a Redis db, real HTTP
between them (HTTPS with client certificates when `LLMDOCS_TLS_DIR` is in `env`).
Processes can be killed and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from llmdocs.core.config import Settings
from llmdocs.core.tls import client_context
from llmdocs.devservers import free_port

SERVICES = ("discovery", "gateway", "promptstore", "docstore", "orchestrator", "interpreter")
NAMES = {"discovery": "discovery-agent", "gateway": "llm-gateway", "docstore": "doc-store",
         "promptstore": "prompt-store", "orchestrator": "orchestrator",
         "interpreter": "interpreter", "logcollector": "log-collector",
         "analysis": "analysis", "notification": "notification"}
START_GUARD = 120.0  # a hang guard for start-up, not a performance bound


@dataclass
class Cluster:
    """The processes by name: a service's key, or `key#n` for its n-th replica (from 1)."""

    settings: Settings
    env: dict[str, str]
    root: Path
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        key = name.split("#")[0]
        env = {**self.env, f"LLMDOCS_{key.upper()}_PORT": str(self.ports[name])}
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "llmdocs", "serve", NAMES[key]], env=env,
            cwd=self.root, stdout=(self.root / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM kill would end it."""
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(10)

    def wait_listening(self, name: str) -> None:
        scheme = "https" if self.settings.tls else "http"
        url = f"{scheme}://127.0.0.1:{self.ports[name]}/health"
        verify = client_context(self.settings, None) or True  # the CLI's certificate
        deadline = time.monotonic() + START_GUARD
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log()}")
            try:
                if httpx.get(url, params={"deep": "false"}, timeout=5,
                             verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start:\n{self.log()}")

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)
        self.wait_listening(name)

    def log(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.root.glob("*.log")))

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_cluster(root: Path, database_url: str, redis_url: str, *,
                    services: tuple[str, ...] = SERVICES, replicas: Mapping[str, int] = {},
                    env: Mapping[str, str] = {}) -> Iterator[Cluster]:
    """The services started and listening; `replicas` of a service share its database and
    data directory, and every client is given all their URLs. `env` adds settings."""
    names = [f"{key}#{n}" if replicas.get(key, 1) > 1 else key
             for key in services for n in range(1, replicas.get(key, 1) + 1)]
    ports = {name: free_port() for name in names}
    tls_dir = env.get("LLMDOCS_TLS_DIR")
    scheme = "https" if tls_dir else "http"
    urls = {key: ",".join(f"{scheme}://127.0.0.1:{p}" for name, p in ports.items()
                          if name.split("#")[0] == key) for key in services}
    secret = "distributed-" + "d" * 40
    base = {**os.environ, "LLMDOCS_DATABASE_URL": database_url,
            "LLMDOCS_EVENTS_URL": redis_url, "LLMDOCS_CACHE_URL": redis_url,
            "LLMDOCS_JWT_SECRET": secret, "LLMDOCS_DATA_DIR": str(root / "data"),
            "LLMDOCS_DISCOVERY_DISCOVER_ON_START": "false",
            "LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS": "0", "LLMDOCS_LOG_LEVEL": "WARNING",
            **{f"LLMDOCS_{key.upper()}_URL": url for key, url in urls.items()}, **env}
    settings = Settings(database_url=database_url, events_url=redis_url,
                        jwt_secret=SecretStr(secret), data_dir=root / "data",
                        inprocess_calls=False, tls_dir=Path(tls_dir) if tls_dir else None,
                        ).model_copy(update={f"{key}_url": url for key, url in urls.items()})
    cluster = Cluster(settings, base, root, ports)
    try:
        for name in names:
            cluster.start(name)
        for name in names:
            cluster.wait_listening(name)
        yield cluster
    finally:
        cluster.stop()
