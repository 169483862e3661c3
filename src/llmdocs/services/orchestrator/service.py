"""The orchestrator's domain work the routes hand over: today the agent workflow's run."""

from __future__ import annotations

from llmdocs.core.config import Settings
from llmdocs.core.events import EventBus, make_event
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator.agent import Agent
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import AgentRequest, AgentRun
from llmdocs.services.orchestrator.tools import ToolCaller, tool_specs

MODEL_TIMEOUT_SECONDS = 300.0  # a model's answer takes longer than a service's


async def run_agent(body: AgentRequest, registry: Registry, caller: ToolCaller,
                    settings: Settings, events: EventBus) -> AgentRun:
    """Reach the goal with the model choosing tools from the catalog; announce the end."""
    specs = tool_specs(await registry.details())
    async with GatewayClient.for_service(settings.waiting_up_to(MODEL_TIMEOUT_SECONDS),
                                         caller="orchestrator") as gateway:
        run = await Agent(gateway, caller.structured_tools(specs), specs).run(body)
    await events.publish(make_event(
        "orchestrator", "llmdocs.workflow.completed",
        {"workflow": "agent", "run_id": run.id, "goal": run.goal,
         "tools": [step.tool for step in run.steps]}, subject=run.id))
    return run
