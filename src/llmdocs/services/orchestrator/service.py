"""The orchestrator's domain work the routes hand over: today the agent workflow's run."""

from __future__ import annotations

from llmdocs.core.events import EventBus, make_event
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator.agent import Agent
from llmdocs.services.orchestrator.registry import Registry
from llmdocs.services.orchestrator.schemas import AgentRequest, AgentRun
from llmdocs.services.orchestrator.tools import ToolCaller, tool_specs


async def run_agent(body: AgentRequest, registry: Registry, caller: ToolCaller,
                    gateway: GatewayClient, events: EventBus) -> AgentRun:
    """Reach the goal with the model choosing tools from the catalog; announce the end."""
    specs = tool_specs(await registry.details())
    run = await Agent(gateway, caller.structured_tools(specs), specs).run(body)
    await events.publish(make_event(
        "orchestrator", "llmdocs.workflow.completed",
        {"workflow": "agent", "run_id": run.id, "goal": run.goal,
         "tools": [step.tool for step in run.steps]}, subject=run.id))
    return run
