"""An embedded ecosystem for a benchmark: the named services in this process, on a
temporary SQLite database, stopped cleanly and their data removed at the end."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from services.orchestrator.fakellm import provider_env


@asynccontextmanager
async def embedded(services: Sequence[str], provider_url: str | None = None
                   ) -> AsyncIterator[Settings]:
    """The services up, every model call going to `provider_url` when given; a service
    that cannot start raises here instead of leaving the benchmark waiting."""
    from llmdocs.runtime import up
    from llmdocs.services import resolve

    if provider_url is not None:
        os.environ.update(provider_env(provider_url))
    os.environ["LLMDOCS_DISCOVERY_DISCOVER_ON_START"] = "false"
    data = Path(tempfile.mkdtemp(prefix="llmdocs-bench-"))
    settings = Settings(data_dir=data, jwt_secret=SecretStr("b" * 48), log_level="WARNING",
                        log_format="console").model_copy(
        update={f"{k}_port": free_port() for k in SERVICE_NAMES})
    ready, stop = asyncio.Event(), asyncio.Event()
    eco = asyncio.create_task(up(settings, [resolve(k) for k in services],
                                 on_ready=ready.set, stop_when=stop))
    try:
        await asyncio.wait([eco, asyncio.create_task(ready.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if eco.done():
            eco.result()  # raises why it could not start
            raise RuntimeError("the ecosystem stopped before it was ready")
        yield settings
    finally:
        stop.set()  # a clean shutdown: every service's lifespan ends its own tasks
        await asyncio.gather(eco, return_exceptions=True)
        shutil.rmtree(data, ignore_errors=True)
