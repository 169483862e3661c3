"""What the steps of every workflow share: the run's state, its trace and provenance."""

from __future__ import annotations

import operator
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError


class WorkflowError(Exception):
    """The run cannot go on; the message says why (a failed run, not a crash)."""


class DocState(TypedDict, total=False):
    run_id: str
    user_id: str
    request: dict[str, Any]
    started_at: str
    template: dict[str, Any]
    context: dict[str, Any]
    outline: list[dict[str, Any]]
    draft: dict[str, Any]
    prose: list[dict[str, Any]]  # per section: model sentences written, kept, dropped
    asked: dict[str, str]  # by section title: the hash of what its prose was asked with
    review: dict[str, Any]
    rounds: int
    revisions: Annotated[list[dict[str, Any]], operator.add]  # what each round changed
    final: dict[str, Any]
    provenance: dict[str, Any]
    result: dict[str, Any]
    announce: list[dict[str, Any]]  # events to publish once the run's end is recorded
    refresh: dict[str, Any]  # a refresh's earlier version: see refresh.py
    steps: Annotated[list[dict[str, Any]], operator.add]
    llm_calls: Annotated[list[dict[str, Any]], operator.add]
    prompts_used: Annotated[list[dict[str, Any]], operator.add]
    services_chain: Annotated[list[dict[str, Any]], operator.add]


class Node(Protocol):
    """A graph node (LangGraph calls it with the keyword `state`)."""

    def __call__(self, state: DocState) -> Awaitable[dict[str, Any]]: ...


Request = TypeVar("Request", bound=BaseModel)


def valid_request(model: type[Request], data: dict[str, Any]) -> Request:
    """A run's request as `model`; one the API would refuse today (a checkpoint of an
    older version, say) fails the run with the reason, not a step with a traceback."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise WorkflowError(f"the request is not valid: {where}: {error['msg']}") from None


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def provenance_of_run(state: DocState, workflow: str, version: str,
                      **execution: Any) -> dict[str, Any]:
    """The provenance parts every workflow records alike. It is stored with the document,
    so it is taken before the last steps (format, store) and the run's end: it says so,
    and the interpreter completes it from the run's record when it serves it. Its chain
    ends with the doc-store call the store step makes with it (found again by run id)."""
    request = state["request"]
    chain = sorted(state.get("services_chain", []), key=lambda c: c["at"])
    chain.append({"service": "doc-store", "step": "store", "at": now_iso(),
                  "operation": f"store document with metadata.run_id {state['run_id']}"})
    return {
        "workflow_execution": {
            "execution_id": state["run_id"], "workflow": workflow, "version": version,
            **execution, "started_at": state["started_at"], "recorded_at": now_iso(),
            "steps": state.get("steps", []), "steps_complete": False},
        "services_chain": ["interpreter", "orchestrator",
                           *dict.fromkeys(c["service"] for c in chain)],
        "service_calls": chain,
        "user_context": {"user_id": state["user_id"], "query": request["query"],
                         "intent": request.get("intent"),
                         "entities": request.get("entities", {}),
                         "session_id": request.get("session_id")}}


class Trace:
    """What one step did: model calls, prompts, services called; merged into the state."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.llm_calls: list[dict[str, Any]] = []
        self.prompts_used: list[dict[str, Any]] = []
        self.services_chain: list[dict[str, Any]] = []

    def called(self, service: str, operation: str) -> None:
        self.services_chain.append({"service": service, "operation": operation,
                                    "step": self.step, "at": now_iso()})

    def update(self, **values: Any) -> dict[str, Any]:
        return {"llm_calls": self.llm_calls, "prompts_used": self.prompts_used,
                "services_chain": self.services_chain, **values}


def initial_state(run_id: str, user_id: str, request: dict[str, Any]) -> DocState:
    return {"run_id": run_id, "user_id": user_id, "request": request,
            "started_at": now_iso(), "steps": [], "llm_calls": [], "prompts_used": [],
            "services_chain": []}
