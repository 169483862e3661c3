"""npm packages a bench compares llmdocs with, installed once under ~/.cache/llmdocs/<name>
(`scripts/node-deps.sh` installs node itself; tests never need it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmdocs"


def ensure(package: str, entry: str, make_target: str) -> Path:
    """`entry` (a path under node_modules) of `package` ("name@version"), installed when
    missing; without npm, exit naming the make target that installs node."""
    name = package.rsplit("@", 1)[0]
    folder = CACHE / name
    path = folder / "node_modules" / entry
    if not path.exists():
        if shutil.which("npm") is None:
            raise SystemExit(f"node and npm are needed for {name}: run `make {make_target}`")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                        package], check=True, stdout=subprocess.DEVNULL)
    return path
