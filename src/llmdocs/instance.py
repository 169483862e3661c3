"""Where the running `llmdocs up` is: a per-user state file naming its data dir (so its
signing key) and URLs, so the CLI run from any directory calls that instance."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from llmdocs.core.config import Settings

log = structlog.get_logger(__name__)


def state_path() -> Path:
    """`$XDG_STATE_HOME/llmdocs/instance.json`, `~/.local/state/...` by default."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "llmdocs" / "instance.json"


@dataclass(frozen=True)
class Instance:
    pid: int
    data_dir: Path
    urls: dict[str, str]  # by service key
    key_in_data_dir: bool  # else the instance signs with LLMDOCS_JWT_SECRET
    tls_dir: Path | None = None  # its certificates, the CLI's among them (mutual TLS)


def record(settings: Settings, keys: Iterable[str]) -> None:
    """Say that this process serves `keys` with `settings` (readable by its user only);
    where that cannot be written, the services still run and the CLI needs the env."""
    path = state_path()
    entry = {"pid": os.getpid(), "data_dir": str(settings.data_dir.resolve()),
             "urls": {key: settings.url_for(key) for key in keys},
             "key_in_data_dir": settings.jwt_secret is None,
             "tls_dir": str(settings.tls_dir.resolve()) if settings.tls_dir else None}
    staged = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(entry, out, indent=2)
        os.replace(staged, path)  # a reader sees the old entry or the new one, never half
    except OSError as exc:
        log.warning("not recorded for the CLI: set LLMDOCS_DATA_DIR where it runs",
                    path=str(path), error=exc.strerror)


def forget() -> None:
    """Remove the entry if it is this process's (another `up` may have replaced it)."""
    path = state_path()
    entry = _read(path)
    if entry is not None and entry.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def forgotten_on_exit() -> Iterator[None]:
    """Whatever `record` wrote inside is removed when the block ends, however it ends."""
    try:
        yield
    finally:
        forget()


def running() -> Instance | None:
    """The recorded instance, if its process still runs."""
    entry = _read(state_path())
    if entry is None:
        return None
    try:
        found = Instance(pid=int(entry["pid"]), data_dir=Path(entry["data_dir"]),
                         urls={str(k): str(v) for k, v in dict(entry["urls"]).items()},
                         key_in_data_dir=bool(entry.get("key_in_data_dir", True)),
                         tls_dir=Path(entry["tls_dir"]) if entry.get("tls_dir") else None)
    except (KeyError, TypeError, ValueError):
        return None
    return found if _alive(found.pid) else None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's by now
        return False
    return True
