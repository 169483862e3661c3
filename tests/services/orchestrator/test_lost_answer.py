"""The doc-store stores a run's document but its answer is lost on the way back, longer
than the store step waits out an outage: the run is not failed beside a stored document
(the caller's retry would make a second one) but resumed, and it finds that document."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ecosystem import store_spec, token
from llmdocs.core.config import Settings
from llmdocs.devservers import free_port
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import fake_llm
from services.orchestrator.test_crash_resume import environment, start_up

FINISHED = ("completed", "failed", "cancelled")


class AnswerDropper:
    """An HTTP/1.1 proxy that forwards every request; while `dropping`, it closes the
    connection instead of returning the answer to a generated document's POST."""

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.AsyncClient(base_url=upstream, timeout=30)
        self.dropping = True
        self.dropped = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *fields = head.decode("latin-1").split("\r\n")[:-2]
                method, target, _ = line.split(" ", 2)
                headers = dict(f.split(": ", 1) for f in fields)
                length = int(next((v for k, v in headers.items()
                                   if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length)
                answer = await self.upstream.request(
                    method, target, content=body,
                    headers={k: v for k, v in headers.items() if k.lower() != "host"})
                if (self.dropping and method == "POST"
                        and target.startswith("/documents?dedupe=false")):
                    self.dropped += 1  # stored upstream; the caller never hears so
                    break
                writer.write(f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}\r\n"
                             .encode("latin-1"))
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding",
                                            "content-encoding", "connection"):
                        writer.write(f"{name}: {value}\r\n".encode("latin-1"))
                writer.write(f"content-length: {len(answer.content)}\r\n\r\n".encode())
                writer.write(answer.content)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def dropping_proxy(upstream: str, port: int) -> AsyncIterator[AnswerDropper]:
    proxy = AnswerDropper(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    try:
        yield proxy
    finally:
        server.close()
        await proxy.upstream.aclose()


async def test_a_stored_document_whose_answer_was_lost_is_found_on_resume(
        tmp_path: Path, serve: Any) -> None:
    fake = await serve(fake_llm(0.0))
    env, settings = environment(tmp_path, fake.url)
    proxy_port = free_port()
    env |= {"LLMDOCS_INPROCESS_CALLS": "false", "LLMDOCS_WORKFLOW_OUTAGE_SECONDS": "1",
            "LLMDOCS_DOCSTORE_URL": f"http://127.0.0.1:{proxy_port}"}
    direct: Settings = settings  # the test talks to the doc-store itself
    async with dropping_proxy(f"http://127.0.0.1:{settings.docstore_port}",
                              proxy_port) as proxy:
        process = await start_up(env, tmp_path / "up.log")
        try:
            await store_spec(direct)
            async with OrchestratorClient.for_service(direct, token=token(direct)) as o:
                run = await o.start_run("document-generation", {
                    "query": "Create API documentation for user service",
                    "service": "user service"}, user_id="u1")
                while proxy.dropped == 0 or "store" not in {
                        s.name for s in (await o.run(run.id)).steps}:
                    await asyncio.sleep(0.05)
                proxy.dropping = False  # the doc-store answers again
                done = await o.run(run.id, wait=60)
                while done.status not in FINISHED:
                    done = await o.run(run.id, wait=60)
            async with DocStoreClient.for_service(direct, token=token(direct)) as docs:
                stored = await docs.list(**{"metadata.run_id": run.id})
        finally:
            process.terminate()  # its shutdown still calls the doc-store through the proxy
            await asyncio.to_thread(process.wait, 20)
    assert done.status == "completed", (done.error, done.steps)
    assert done.attempts == 2  # left, then resumed
    assert done.result is not None
    assert [d.document_id for d in stored.items] == [done.result["document_id"]]
