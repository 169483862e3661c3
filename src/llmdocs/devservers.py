"""Throwaway PostgreSQL and Redis servers on loopback, data in a temp dir, started from
the binaries `make test` installs: tests and benchmarks use real servers, never mocks."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket

# bandit B404: starts our own test databases
import subprocess  # nosec B404
import tempfile
import time
from pathlib import Path

_handed_out: set[int] = set()  # ports this process was given and may not have bound yet


def free_port() -> int:
    """A loopback port nothing listens on, never one this process was given before: the
    kernel may offer a just-closed port again, and two services of one `llmdocs up`
    given the same port collided (one of them never started)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Block until something listens on the loopback port (a server started apart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def postgres_bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        # bandit B603: our own binaries, fixed args
        out = subprocess.run(  # nosec B603
            [found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs else None


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llmdocs-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (make test installs it)")
        # appendonly: a restarted server keeps what it had, like a production one
        # bandit B603: our own binaries, fixed args
        self.process = subprocess.Popen(  # nosec B603
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--save", "", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """PostgreSQL refuses to run as root, so as root it runs as the `postgres` user."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llmdocs-pg-"))
        self.data = self.dir / "data"
        self.bindir = postgres_bindir()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (make test installs it)")
        return str(self.bindir / name)

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # bandit B603: our own binaries, fixed args
        subprocess.run(  # nosec B603
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        """Start the server; again after `stop`, with the data it had (a restart)."""
        if not (self.data / "PG_VERSION").exists():
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres", "postgres")
            self._run(self._bin("initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", self.user, "--no-sync", "-E", "UTF8")
        # synchronous_commit: a commit is written (not flushed: fsync is off) before it
        # is acknowledged, so that `crash` loses none, as a production server would not
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=on -c full_page_writes=off "
                   "-c max_connections=300")
        self._run(self._bin("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")
        wait_port(self.port)
        return self

    def create_database(self, name: str) -> str:
        self._run(self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, name)
        return self.url(name)

    def stop(self) -> None:
        self._stop("fast")

    def crash(self) -> None:
        """An immediate stop: clients cut off, no checkpoint, recovery at the next start,
        as after a crash."""
        self._stop("immediate")

    def _stop(self, mode: str) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self._bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
