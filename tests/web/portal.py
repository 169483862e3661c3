"""`llmdocs up --example` as a real process for the browser tests: its printed sign-in
link, its worked example's document, and tokens and links for more users."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services.web.sessions import sign_in_link
from llmdocs.services.web.settings import WebSettings

SECRET = "web-test-secret-" + "w" * 30
START_GUARD = 300.0  # a hang guard for start-up and the example's model run, not a bound
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)")
EXAMPLE = re.compile(r"^document\s+(\S+) \(", re.MULTILINE)
# few tokens per model call keep the CPU model quick; the workflow is unchanged
SHORT_PROSE = {"LLMDOCS_WORKFLOW_PROSE_TOKENS": "16", "LLMDOCS_WORKFLOW_REVIEW_TOKENS": "16",
               "LLMDOCS_INTERPRETER_MODEL_TOKENS": "24"}


@dataclass
class Portal:
    """A running ecosystem: where each service answers and how to act in it."""

    env: dict[str, str]
    log: Path
    login_link: str = ""
    example_document: str = ""
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def web(self) -> str:
        return self.urls["web"]

    @property
    def settings(self) -> Settings:
        ports = {f"{key}_port": int(url.rsplit(":", 1)[1]) for key, url in self.urls.items()}
        return Settings(data_dir=Path(self.env["LLMDOCS_DATA_DIR"]),
                        jwt_secret=SecretStr(SECRET)).model_copy(update=ports)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self, subject: str = "user:admin", *scopes: str) -> str:
        return issue_token(self.settings, subject, list(scopes) or ["*"])

    def call(self, service: str, subject: str = "user:admin") -> httpx.Client:
        """A client of one service's JSON API as `subject` (all scopes)."""
        return httpx.Client(base_url=self.urls[service], timeout=60,
                            headers={"Authorization": f"Bearer {self.token(subject)}"})

    def link(self, subject: str = "user:reader", *roles: str) -> str:
        """A fresh one-time sign-in link for `subject`, with `roles` or else every scope,
        made as `llmdocs web login` makes it (the command takes seconds to start)."""
        return sign_in_link(self.settings, WebSettings(), subject,
                            scopes=() if roles else ("*",), roles=roles)

    def new_login_link(self) -> str:
        """A fresh one-time sign-in link, as `llmdocs web login` prints it."""
        done = subprocess.run([sys.executable, "-m", "llmdocs", "web", "login"],
                              env=self.env, capture_output=True, text=True, timeout=60,
                              cwd=self.log.parent)
        found = LINK.search(done.stdout)
        assert done.returncode == 0 and found, done.stdout + done.stderr
        return found.group(1)

    def store(self, content: str, subject: str = "user:admin", **fields: Any) -> str:
        """A Markdown document stored at the doc-store; its id."""
        with self.call("docstore", subject) as docs:
            stored = docs.post("/documents", json={"content": content, "format": "markdown",
                                                   **fields})
        assert stored.status_code == 201, stored.text
        document_id: str = stored.json()["document_id"]
        return document_id


def _wait_for(portal: Portal, proc: subprocess.Popen[bytes], what: re.Pattern[str]) -> str:
    deadline = time.monotonic() + START_GUARD
    while time.monotonic() < deadline:
        found = what.search(portal.output())
        if found:
            return found.group(1)
        assert proc.poll() is None, f"llmdocs up exited {proc.returncode}:\n{portal.output()}"
        time.sleep(0.1)
    raise AssertionError(f"no {what.pattern!r} after {START_GUARD}s:\n{portal.output()}")


@contextmanager
def start_portal(workdir: Path) -> Iterator[Portal]:
    """`llmdocs up --example` on free ports in `workdir`, until the example is done."""
    ports = {key: free_port() for key in SERVICE_NAMES}
    env = dict(os.environ) | SHORT_PROSE | {
        f"LLMDOCS_{key.upper()}_PORT": str(port) for key, port in ports.items()} | {
        "LLMDOCS_DATA_DIR": str(workdir / "data"), "LLMDOCS_JWT_SECRET": SECRET,
        "LLMDOCS_LOG_FORMAT": "console", "XDG_STATE_HOME": str(workdir / "state")}
    portal = Portal(env=env, log=workdir / "up.log",
                    urls={key: f"http://127.0.0.1:{port}" for key, port in ports.items()})
    with portal.log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmdocs", "up", "--example"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        portal.login_link = _wait_for(portal, proc, LINK)
        portal.example_document = _wait_for(portal, proc, EXAMPLE)
        yield portal
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
