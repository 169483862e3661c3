"""HTTP routes of the orchestrator. Routes parse, call the domain modules and shape the
answer: the registry, the tool catalog, the agent, and workflow runs."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from llmdocs.core.app import client_of
from llmdocs.core.auth import Principal, bearer_token, require
from llmdocs.core.db import StorableText
from llmdocs.core.errors import Problem, domain_problems
from llmdocs.core.idempotency import (
    Answer,
    IdempotencyKeyHeader,
    KeyedRequest,
    answer_of,
    answered,
    made,
)
from llmdocs.core.spaces import Spaces, SpaceView
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator import errors, privacy_api, service
from llmdocs.services.orchestrator.registry import ADMIN_SCOPE, Registry
from llmdocs.services.orchestrator.runs import Viewer
from llmdocs.services.orchestrator.schemas import (
    FINISHED,
    SERVICE_NAME,
    AgentRequest,
    AgentRun,
    EcosystemHealth,
    EntityId,
    HealthUpdate,
    RegistrationResult,
    RunCheck,
    RunPage,
    RunRequest,
    RunStatus,
    ServiceDetail,
    ServiceHealth,
    ServiceRegistration,
    ServiceSummary,
    ToolCall,
    ToolResult,
    WorkflowInfo,
    WorkflowRunOut,
)
from llmdocs.services.orchestrator.tools import ToolCaller, ToolFormat, descriptor, tool_specs
from llmdocs.services.orchestrator.workflows import Runner, catalog

log = structlog.get_logger(__name__)
STATUS = {errors.Unknown: 404, errors.Refused: 403, errors.Invalid: 422,
          errors.WrongState: 409, errors.GatewayFailed: 502, errors.HolderFailed: 502}


router = APIRouter(tags=["orchestrator"], dependencies=[Depends(domain_problems(STATUS))])
_read, _write = require("workflows:read"), require("workflows:write")
READ, WRITE = [Depends(_read)], [Depends(_write)]
Reader = Annotated[Principal, Depends(_read)]
Writer = Annotated[Principal, Depends(_write)]
# services and holders of ADMIN_SCOPE see, start and change anyone's runs and
# registrations; others only their own (see `_owner_filter`)
ServiceName = Path(pattern=SERVICE_NAME)


async def registry(request: Request) -> Registry:
    resources = request.app.state.resources
    return Registry(resources.database, resources.events)


async def runner(request: Request) -> Runner:
    return request.app.state.runner  # type: ignore[no-any-return]


async def tool_caller(request: Request,
                      caller: Annotated[Principal, Depends(require())]) -> ToolCaller:
    """Tool calls made for this caller, with its identity and no more than its scopes."""
    return ToolCaller(request.app.state.settings, request.app.state.tool_settings, caller,
                      bearer_token(request))


# --- service registry -------------------------------------------------------------

@router.post("/registry/services", status_code=201, response_model=RegistrationResult,
             summary="Register a service or update it when its spec hash changed (its "
             "owner, a service or a workflows:admin; llmdocs' own names: services only)")
async def register_service(
    body: ServiceRegistration, caller: Writer, keyed: KeyedRequest,
    reg: Registry = Depends(registry), runs: Runner = Depends(runner),
) -> Response:
    async def register() -> Answer:
        result = await reg.register(body, caller)
        return answer_of(result, 201 if result.created else 200)

    return await keyed.once(runs.keys, caller.subject, body, register)


@router.get("/registry/services", dependencies=READ, summary="Every registered service")
async def list_services(reg: Registry = Depends(registry)) -> list[ServiceSummary]:
    return await reg.summaries()


@router.get("/registry/health", dependencies=READ,
            summary="The whole ecosystem's health at a glance")
async def ecosystem_health(reg: Registry = Depends(registry)) -> EcosystemHealth:
    return await reg.ecosystem()


@router.get("/registry/services/{name}", dependencies=READ,
            summary="One service with its operations grouped by tag and resource")
async def get_service(name: str = ServiceName,
                      reg: Registry = Depends(registry)) -> ServiceDetail:
    return await reg.get(name)


@router.delete("/registry/services/{name}", status_code=204,
               summary="Forget a service (its owner, a service or a workflows:admin)")
async def remove_service(caller: Writer, name: str = ServiceName,
                         reg: Registry = Depends(registry)) -> None:
    await reg.remove(name, caller)


@router.put("/registry/services/{name}/health",
            summary="Record a service's health as the discovery-agent found it")
async def set_health(body: HealthUpdate, caller: Writer, name: str = ServiceName,
                     reg: Registry = Depends(registry)) -> ServiceHealth:
    return await reg.set_health(name, body, caller)


# --- tool catalog -----------------------------------------------------------------

@router.get("/tools", dependencies=READ,
            summary="Every registered operation as a tool: LangChain, MCP or OpenAI format")
async def list_tools(
    format: ToolFormat = Query("mcp"),
    service: str | None = Query(None, pattern=SERVICE_NAME),
    reg: Registry = Depends(registry),
    caller: ToolCaller = Depends(tool_caller),
) -> list[dict[str, Any]]:
    services = [await reg.get(service)] if service else await reg.details()
    return [descriptor(spec, format, caller) for spec in tool_specs(services)]


@router.post("/tools/{name}/call", dependencies=WRITE,
             summary="Call a tool: the real HTTP request to its service, made for the "
             "caller (llmdocs services see the caller, with no more than its scopes)")
async def call_tool(
    body: ToolCall, name: str = Path(max_length=64),
    service: str | None = Query(None, pattern=SERVICE_NAME, description="the tool's "
                                "service: a name as GET /tools?service= lists it"),
    reg: Registry = Depends(registry), caller: ToolCaller = Depends(tool_caller),
) -> ToolResult:
    # names are made per listing: one listed for a service is looked up among its own
    for spec in tool_specs([await reg.get(service)] if service else await reg.details()):
        if spec.name == name:
            return await caller.call(spec, body.arguments)
    raise Problem(404, f"No tool named {name!r}; see GET /tools.")


# --- agent workflow ---------------------------------------------------------------

@router.post("/workflows/agent/runs", response_model=AgentRun,
             summary="Reach a goal with the model choosing tools from the catalog")
async def run_agent(
    body: AgentRequest, request: Request, who: Writer, keyed: KeyedRequest,
    reg: Registry = Depends(registry), caller: ToolCaller = Depends(tool_caller),
    runs: Runner = Depends(runner),
) -> Response:
    app = request.app
    return await keyed.once(runs.keys, who.subject, body, lambda: made(service.run_agent(
        body, reg, caller, client_of(app, GatewayClient), app.state.resources.events), 200))


# --- workflows and runs -----------------------------------------------------------

RunId = Annotated[EntityId, Path()]
Filter = Annotated[StorableText | None, Query(max_length=200)]
WaitSeconds = Query(0.0, ge=0, le=300, description="wait up to this long for the end")


@router.get("/workflows", dependencies=READ, summary="The workflows that can be run")
async def list_workflows() -> list[WorkflowInfo]:
    return catalog()


def _owner_filter(caller: Principal) -> str | None:
    """The one user whose runs the caller may see and change: itself; None (anyone's)
    for services (the interpreter names the user in the run) and workflow admins."""
    return None if caller.acts_for_anyone(ADMIN_SCOPE) else caller.subject


def _viewer(caller: Principal, spaces: SpaceView) -> Viewer:
    """The runs the caller may see and change: its own (see `_owner_filter`), in the
    spaces it is a member of (any, for services and space admins)."""
    return Viewer(_owner_filter(caller), spaces.visible())


@router.post("/workflows/{name}/runs", status_code=202, response_model=WorkflowRunOut,
             summary="Start a run; with `wait`, answer 200 when it ends within that time")
async def start_run(body: RunRequest, request: Request, caller: Writer, spaces: Spaces,
                    name: str = Path(pattern=SERVICE_NAME), wait: float = WaitSeconds,
                    runs: Runner = Depends(runner),
                    key: str | None = IdempotencyKeyHeader) -> Response:
    unnamed = None if _owner_filter(caller) else "anonymous"  # a service's or an admin's own run
    user = caller.acting_for(body.user_id or unnamed, ADMIN_SCOPE)

    async def start() -> Answer:
        run = await runs.create(name, body, user, caller, spaces)
        if wait > 0:
            try:
                run = await runs.wait(run.id, wait)
            except Exception:  # the run exists: its key replays it, never starts another
                log.warning("run not followed to its end", run_id=run.id, exc_info=True)
        return Answer(200 if run.status in FINISHED else 202, run.model_dump(mode="json"),
                      {"Location": f"/runs/{run.id}"})

    # the same key and body: the same run, wherever the first one has got to
    canonical = f"{name} {user} {body.model_dump_json()}"
    return answered(request, await runs.keys.once(caller.subject, key, canonical, start))


@router.post("/workflows/{name}/check",
             summary="Check a run's input without starting it: 200 with the input the "
             "run would take, or the 404 or 422 that starting it would answer")
async def check_run(body: RunRequest, caller: Reader, spaces: Spaces,
                    name: str = Path(pattern=SERVICE_NAME),
                    runs: Runner = Depends(runner)) -> RunCheck:
    workflow, data = await runs.check(name, body, caller, spaces)
    return RunCheck(workflow=workflow.name, version=workflow.version, input=data)


@router.get("/runs", summary="Recent runs, newest first (the caller's own, unless it "
            "acts for anyone, in the spaces it is a member of)")
async def list_runs(
    caller: Reader, spaces: Spaces, workflow: Filter = None,
    status: RunStatus | None = Query(None), user_id: Filter = None,
    space: Filter = None, limit: int = Query(50, ge=1, le=500),
    runs: Runner = Depends(runner),
) -> RunPage:
    return RunPage(items=[runs.view(run) for run in await runs.store.recent(
        workflow, status, user_id, limit, _viewer(caller, spaces), space)])


# another user's run, or one in a space the caller is not a member of, is a 404, as a
# missing one is: its id is not confirmed to a caller who may not see it

@router.get("/runs/{run_id}",
            summary="A run: status, steps, result; `wait` long-polls for its end")
async def get_run(run_id: RunId, caller: Reader, spaces: Spaces,
                  wait: float = WaitSeconds, runs: Runner = Depends(runner)) -> WorkflowRunOut:
    return await runs.wait(run_id, wait, _viewer(caller, spaces))


@router.post("/runs/{run_id}/cancel", summary="Cancel a run")
async def cancel_run(run_id: RunId, caller: Writer, spaces: Spaces,
                     runs: Runner = Depends(runner)) -> WorkflowRunOut:
    return await runs.cancel(run_id, _viewer(caller, spaces))


@router.post("/runs/{run_id}/resume", status_code=202,
             summary="Resume a failed, cancelled or orphaned run from its last checkpoint")
async def resume_run(run_id: RunId, caller: Writer, spaces: Spaces,
                     runs: Runner = Depends(runner)) -> WorkflowRunOut:
    return await runs.resume(run_id, _viewer(caller, spaces))


router.include_router(privacy_api.router)
