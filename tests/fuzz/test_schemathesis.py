"""Schemathesis against every service's OpenAPI document: `llmdocs up` on loopback
(SQLite; the gateway's model a fake of a paid API, so fuzzed chat calls cost nothing),
a token with every scope, a bounded, deterministic set of cases per operation. Every
answer must be no server error and match the document's schema for its status.
`FUZZ_SEED=<n>` explores other cases than CI's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from fuzz import CASES
from fuzz.stack import FAKE_PORT
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.devservers import free_port
from llmdocs.services import create_app

SETTINGS = Settings(data_dir=Path("unused"), jwt_secret=SecretStr("fuzz-" + "z" * 43),
                    log_format="console")
TOKEN = issue_token(SETTINGS, "user:fuzz", ["*"], ttl_seconds=6 * 3600)  # every scope
START_GUARD = 120.0  # a hang guard for start-up, not a performance bound
EXAMPLES = 25  # generated cases per operation, besides its examples and coverage cases
TIMEOUT = 10.0  # seconds for one answer
Case = schemathesis.Case[Any]  # of any operation
CHECKS = [not_a_server_error, response_schema_conformance]
CONFIG = {
    "seed": int(os.environ.get("FUZZ_SEED", "18")),
    "headers": {"Authorization": f"Bearer {TOKEN}"},
    "request-timeout": TIMEOUT,
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "no-shrink": True,
                   "database": "none"},
    # an event stream may run for ever (that is its point): schemathesis reads it until
    # the timeout and checks what came; a second shows the first events
    "operations": [{"include-path": ["/logs/stream", "/executions/{execution_id}/events",
                                     "/inbox/stream"],
                    "request-timeout": 1.0}],
}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """A body as one NDJSON line: the doc-store's bulk import takes a document a line."""
    return json.dumps(value).encode() + b"\n"


@dataclass
class Stack:
    urls: dict[str, str]  # service key -> base URL
    log: Path
    cases: dict[str, Counter[str]]  # service -> operation -> cases sent


def _documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document as its app makes it (what /openapi.json serves;
    the stack fixture checks that), so the cases are known before anything runs."""
    return {key: create_app(key, SETTINGS).openapi() for key in SERVICE_NAMES}


DOCUMENTS = _documents()
SERVICE_OF = {document["info"]["title"]: key for key, document in DOCUMENTS.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          pytestconfig: pytest.Config) -> Iterator[Stack]:
    """`llmdocs up` in a process of its own, stopped (SIGTERM, as Ctrl-C) at the end."""
    data = tmp_path_factory.mktemp("fuzz")
    ports = {key: free_port() for key in SERVICE_NAMES}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), LLMDOCS_DATA_DIR=str(data),
               LLMDOCS_JWT_SECRET=SETTINGS.signing_key, LLMDOCS_LOG_FORMAT="console",
               LLMDOCS_LOG_LEVEL="WARNING", **{FAKE_PORT: str(free_port())})
    env |= {f"LLMDOCS_{key.upper()}_PORT": str(port) for key, port in ports.items()}
    env["LLMDOCS_GATEWAY_PROVIDERS"] = json.dumps([{
        "name": "fake", "kind": "openai", "base_url": f"http://127.0.0.1:{env[FAKE_PORT]}/v1",
        "api_key": "not-a-real-key", "models": {"smollm2": "smollm2"},
        "embedding_models": {"smollm2-embed": "smollm2"}, "trusted": True}])
    log = data / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "fuzz.stack"], env=env, cwd=data,
                                   stdout=out, stderr=subprocess.STDOUT)
    stack = Stack({key: f"http://127.0.0.1:{port}" for key, port in ports.items()}, log,
                  pytestconfig.stash.setdefault(CASES, {}))
    try:
        _wait_until_up(process, stack)
        yield stack
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], stack: Stack) -> None:
    deadline = time.monotonic() + START_GUARD
    for key, url in stack.urls.items():
        while True:
            if process.poll() is not None:
                raise AssertionError(f"llmdocs up exited:\n{stack.log.read_text()[-5000:]}")
            try:
                served = httpx.get(f"{url}/openapi.json", timeout=5)
                break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} not up after {START_GUARD}s"
            time.sleep(0.2)
        assert served.json() == DOCUMENTS[key], f"{key} serves another document"


@schemathesis.pytest.parametrize(**{
    key: schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(CONFIG))
    for key, document in DOCUMENTS.items()})
def test_api(case: Case, stack: Stack) -> None:
    service = SERVICE_OF[case.operation.schema.raw_schema["info"]["title"]]
    stack.cases.setdefault(service, Counter())[case.operation.label] += 1
    response = case.call(base_url=stack.urls[service])
    if response.status_code >= 500:  # shown with the failure: the traceback is in it
        print(f"llmdocs up's log ends:\n{stack.log.read_text()[-8000:]}")
    case.validate_response(response, checks=CHECKS)
