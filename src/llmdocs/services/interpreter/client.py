"""Typed client of the interpreter: what other services and the CLI use to reach it."""

from __future__ import annotations

from typing import Any

from llmdocs.core.client import ServiceClient
from llmdocs.services.interpreter.schemas import ExecutionOut, InterpretOut


class InterpreterClient(ServiceClient):
    service = "interpreter"

    async def interpret(self, query: str, **fields: Any) -> InterpretOut:
        return InterpretOut.model_validate(
            await self.post_json("/interpret", {"query": query, **fields}))

    async def execute(self, query: str, *, format: str | None = None, run_async: bool = False,
                      **fields: Any) -> ExecutionOut:
        """Run a request, retried under its own Idempotency-Key: never twice."""
        body = {"query": query, "format": format, "async": run_async, **fields}
        return ExecutionOut.model_validate(await self.create_json(
            "/execute-query", {k: v for k, v in body.items() if v is not None}))

    async def refresh(self, document_id: str, *, run_async: bool = False) -> ExecutionOut:
        """Write a generated document again as its next version (not retried: use an
        Idempotency-Key for that)."""
        return ExecutionOut.model_validate(await self.post_json(
            f"/documents/{document_id}/refresh", {"async": run_async}))

    async def execution(self, execution_id: str, wait: float = 0.0) -> ExecutionOut:
        return ExecutionOut.model_validate(await self.get_json(
            f"/executions/{execution_id}", params={"wait": wait} if wait else None))

    async def cancel(self, execution_id: str) -> ExecutionOut:
        """Stop a running execution (a 409 `Conflict` when it has already ended)."""
        return ExecutionOut.model_validate(
            await self.post_json(f"/executions/{execution_id}/cancel"))

    async def provenance(self, document_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.get_json(f"/documents/{document_id}/provenance")
        return data

    async def download(self, document_id: str) -> bytes:
        return (await self.request("GET", f"/documents/{document_id}/download")).content
