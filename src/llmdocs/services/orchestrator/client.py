"""Typed client of the orchestrator: what other services and the CLI use to reach it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from llmdocs.core.client import ServiceClient, idempotency_header
from llmdocs.services.orchestrator.schemas import (
    AgentRun,
    EcosystemHealth,
    ErasureReceipt,
    HealthStatus,
    RegistrationResult,
    RunCheck,
    RunPage,
    ServiceDetail,
    ServiceHealth,
    ServiceRegistration,
    ServiceSummary,
    ToolResult,
    WorkflowInfo,
    WorkflowRunOut,
)

_summaries = TypeAdapter(list[ServiceSummary])
_workflows = TypeAdapter(list[WorkflowInfo])


class OrchestratorClient(ServiceClient):
    service = "orchestrator"

    # --- service registry ---------------------------------------------------------

    async def register_service(self, registration: ServiceRegistration, *,
                               token: str | None = None) -> RegistrationResult:
        """Idempotent: the same spec hash again changes nothing, so retrying is safe.
        `token` (an on-behalf-of token) registers for its subject, who owns it then."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return RegistrationResult.model_validate(await self.create_json(
            "/registry/services", registration.model_dump(mode="json", by_alias=True),
            headers=headers))

    async def list_services(self) -> list[ServiceSummary]:
        return _summaries.validate_python(await self.get_json("/registry/services"))

    async def get_service(self, name: str) -> ServiceDetail:
        return ServiceDetail.model_validate(await self.get_json(f"/registry/services/{name}"))

    async def remove_service(self, name: str) -> None:
        await self.request("DELETE", f"/registry/services/{name}")

    async def set_health(self, name: str, status: HealthStatus,
                         reason: str | None = None) -> ServiceHealth:
        response = await self.request("PUT", f"/registry/services/{name}/health",
                                      json={"status": status, "reason": reason})
        return ServiceHealth.model_validate(response.json())

    async def ecosystem_health(self) -> EcosystemHealth:
        return EcosystemHealth.model_validate(await self.get_json("/registry/health"))

    # --- tool catalog -------------------------------------------------------------

    async def tools(self, format: str = "mcp", service: str | None = None
                    ) -> list[dict[str, Any]]:
        params = {"format": format} | ({"service": service} if service else {})
        tools: list[dict[str, Any]] = await self.get_json("/tools", params=params)
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        service: str | None = None) -> ToolResult:
        """`service`: the one whose tools were listed (`tools(service=...)`) to get `name`."""
        return ToolResult.model_validate(await self.post_json(
            f"/tools/{name}/call", {"arguments": arguments},
            params={"service": service} if service else None))

    # --- agent workflow -----------------------------------------------------------

    async def run_agent(self, goal: str, max_steps: int = 3) -> AgentRun:
        return AgentRun.model_validate(await self.create_json(
            "/workflows/agent/runs", {"goal": goal, "max_steps": max_steps}))

    # --- workflows and runs -------------------------------------------------------

    async def workflows(self) -> list[WorkflowInfo]:
        return _workflows.validate_python(await self.get_json("/workflows"))

    async def start_run(self, workflow: str, data: dict[str, Any], *,
                        user_id: str | None = None, wait: float = 0.0,
                        key: str | None = None) -> WorkflowRunOut:
        """Start a run, retried when the orchestrator is unreachable or failing: the call's
        Idempotency-Key (`key` to make another call the same run) makes a retry the same
        run. With `wait`, the answer is the finished run when it ends within that many
        seconds. The run is the caller's own unless a service or an admin names
        `user_id`."""
        body: dict[str, Any] = {"input": data}
        if user_id is not None:
            body["user_id"] = user_id
        # parsed and validated in one pass: a finished run carries its whole provenance
        return WorkflowRunOut.model_validate_json((await self.request(
            "POST", f"/workflows/{workflow}/runs", json=body, idempotent=True,
            headers=idempotency_header(key),
            params={"wait": wait} if wait else None)).content)

    async def check_run(self, workflow: str, data: dict[str, Any]) -> RunCheck:
        """What a run of `workflow` with `data` would take as its input, without starting
        it: the refusal that `start_run` would meet is raised the same."""
        return RunCheck.model_validate((await self.request(
            "POST", f"/workflows/{workflow}/check", json={"input": data})).json())

    async def run(self, run_id: str, wait: float = 0.0) -> WorkflowRunOut:
        """A run; `wait` long-polls until it ends (at most that many seconds)."""
        return WorkflowRunOut.model_validate_json((await self.request(
            "GET", f"/runs/{run_id}", params={"wait": wait} if wait else None)).content)

    async def runs(self, *, workflow: str | None = None, status: str | None = None,
                   user_id: str | None = None, limit: int = 50) -> RunPage:
        params = {k: v for k, v in (("workflow", workflow), ("status", status),
                                    ("user_id", user_id)) if v is not None}
        return RunPage.model_validate(await self.get_json(
            "/runs", params={**params, "limit": limit}))

    async def cancel_run(self, run_id: str) -> WorkflowRunOut:
        return WorkflowRunOut.model_validate(await self.post_json(f"/runs/{run_id}/cancel"))

    async def resume_run(self, run_id: str) -> WorkflowRunOut:
        return WorkflowRunOut.model_validate(await self.post_json(f"/runs/{run_id}/resume"))

    # --- privacy requests (privacy:admin) -----------------------------------------

    async def export_subject(self, subject: str) -> bytes:
        """Everything llmdocs holds about `subject`, as a ZIP."""
        return (await self.request(
            "GET", f"/privacy/subjects/{quote(subject, safe='')}/export")).content

    async def erase_subject(self, subject: str, *, owned_documents: str | None = None,
                            transfer_to: str | None = None) -> ErasureReceipt:
        """Erase `subject` everywhere (retried while a service is down: the retry goes
        on with the same request); the receipt."""
        params = {k: v for k, v in (("owned_documents", owned_documents),
                                    ("transfer_to", transfer_to)) if v is not None}
        return ErasureReceipt.model_validate((await self.request(
            "DELETE", f"/privacy/subjects/{quote(subject, safe='')}", params=params)).json())

    async def privacy_request(self, request_id: str) -> ErasureReceipt:
        return ErasureReceipt.model_validate(
            await self.get_json(f"/privacy/requests/{request_id}"))
