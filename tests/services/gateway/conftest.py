"""Gateway fixtures: the app on real HTTP with chosen providers, a real llama.cpp server
(`python -m llama_cpp.server` with SmolLM2) and wire-format fakes of paid APIs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app
from llmdocs.services.gateway.providers.local import smollm2_path
from llmdocs.services.gateway.settings import GatewaySettings, ProviderConfig
from services.gateway.fakes import FAKES, Upstream

# llama.cpp's AMX/repack buffers crash in this VM; the server has no flag, so the
# launcher loads the model the way the gateway's local provider does
LAUNCH = (
    "import runpy, sys\n"
    "from llmdocs.services.gateway.providers.local import extra_buffers\n"
    "with extra_buffers(False):\n"
    "    sys.argv = ['llama_cpp.server'] + sys.argv[1:]\n"
    "    runpy.run_module('llama_cpp.server', run_name='__main__')\n"
)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real OpenAI-compatible llama.cpp server on loopback, serving SmolLM2 for chat
    and embeddings."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--model", smollm2_path(), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "1",
         "--embedding", "true"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def headers(settings: Settings, subject: str = "user:ann", *scopes: str) -> dict[str, str]:
    token = issue_token(settings, subject, scopes or ("llm:read", "llm:write"))
    return {"Authorization": f"Bearer {token}"}


Gateway = Callable[..., Awaitable[Any]]


@pytest.fixture
def gateway(serve: Any, settings: Settings) -> Gateway:
    """Start the gateway over HTTP with these providers (default: the local model);
    `kernel` replaces the test's kernel settings (e.g. to add Redis)."""

    async def start(*providers: ProviderConfig, kernel: Settings | None = None,
                    **options: Any) -> Any:
        app = create_app("gateway", kernel or settings)
        chosen = list(providers) or GatewaySettings().providers
        app.state.gateway_settings = GatewaySettings(providers=chosen, **options)
        running = await serve(app)
        running.app = app
        return running

    return start


Fake = Callable[[str], Awaitable[tuple[Upstream, str]]]


@pytest.fixture
def fake(serve: Any) -> Fake:
    """A wire-format fake of a paid API: returns what it received and its base URL."""

    async def start(kind: str) -> tuple[Upstream, str]:
        upstream = Upstream()
        running = await serve(FAKES[kind](upstream))
        return upstream, running.url + ("/v1" if kind == "openai" else "")

    return start
