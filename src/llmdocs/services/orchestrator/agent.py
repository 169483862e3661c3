"""The agent workflow: the model picks tools from the catalog (choose → act, a bounded
number of times), then answers the goal from what they returned; a JSON schema limits
its choice, so even a small local model picks only a real tool with well-formed arguments."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypedDict

from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, StateGraph

from llmdocs.core.client import ServiceError
from llmdocs.core.ids import new_id
from llmdocs.services.gateway.client import GatewayClient
from llmdocs.services.orchestrator.errors import GatewayFailed, WrongState
from llmdocs.services.orchestrator.schemas import AgentRequest, AgentRun, AgentStep
from llmdocs.services.orchestrator.tools import ToolSpec

FINISH = "finish"
OFFERED = 6  # tools shown to the model: the best matches for the goal
MAX_OBSERVATION = 1200  # characters of each tool answer the model sees
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"the", "and", "for", "all", "with", "what", "which", "are", "is", "of",
                   "to", "a", "an", "in", "on", "me", "get", "show", "please"})


class _State(TypedDict):
    goal: str
    max_steps: int
    steps: list[dict[str, Any]]
    choice: dict[str, Any] | None
    answer: str


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in _STOP}


def rank(goal: str, specs: Sequence[ToolSpec], limit: int = OFFERED) -> list[ToolSpec]:
    """The tools whose name and description share most words with the goal."""
    wanted = _words(goal)
    scored = sorted(enumerate(specs), key=lambda item: (
        -len(wanted & _words(f"{item[1].name} {item[1].description}")), item[0]))
    return [spec for _, spec in scored[:limit]]


def _grammar_schema(schema: Any, depth: int = 0) -> dict[str, Any]:
    """A small, plain version of an argument schema for a grammar-constrained model:
    types, properties and enums only, nesting cut at 3 levels, every array with items
    and every value with a type (model servers' schema-to-grammar converters choke on
    less)."""
    if not isinstance(schema, dict):
        return {"type": "string"}
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return {"enum": [v for v in schema["enum"] if v is not None] or [""]}
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") if depth < 3 else None
        if not isinstance(properties, dict):
            return {"type": "object", "properties": {}}
        out = {k: _grammar_schema(v, depth + 1) for k, v in properties.items()}
        return {"type": "object", "properties": out,
                "required": [k for k in schema.get("required", []) if k in out]}
    if kind == "array":
        return {"type": "array", "items": _grammar_schema(schema.get("items"), depth + 1)}
    if kind in ("integer", "number", "boolean", "string"):
        return {"type": kind}
    return {"type": "string"}


def choice_schema(specs: Sequence[ToolSpec], allow_finish: bool) -> dict[str, Any]:
    """One alternative per tool: its name as a constant, its own argument schema."""
    options = [{"type": "object", "required": ["tool", "arguments"], "properties": {
        "tool": {"const": spec.name},
        "arguments": _grammar_schema({**spec.input_schema, "type": "object"})}}
        for spec in specs]
    if allow_finish:  # not on the first step: that one must use a tool
        options.append({"type": "object", "required": ["tool", "arguments"], "properties": {
            "tool": {"const": FINISH}, "arguments": {"type": "object", "properties": {}}}})
    return {"anyOf": options}


def _observations(steps: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {s['tool']}({json.dumps(s['arguments'])}) returned: "
                     f"{json.dumps(s['result'], default=str)[:MAX_OBSERVATION]}"
                     for s in steps) or "(none yet)"


class Agent:
    def __init__(self, gateway: GatewayClient, tools: Sequence[StructuredTool],
                 specs: Sequence[ToolSpec], model: str | None = None) -> None:
        self.gateway = gateway
        self.tools = {tool.name: tool for tool in tools}
        self.specs = specs
        self.model = model
        self.offered: list[ToolSpec] = []
        self.graph = self._build()

    async def _ask(self, prompt: str, system: str, schema: dict[str, Any] | None,
                   max_tokens: int) -> str:
        try:
            answer = await self.gateway.query(prompt, system=system, json_schema=schema,
                                              model=self.model, max_tokens=max_tokens,
                                              temperature=0.0)
        except ServiceError as exc:
            raise GatewayFailed(f"The llm-gateway could not answer: {exc}") from None
        return answer.response

    async def _choose(self, state: _State) -> dict[str, Any]:
        listing = "\n".join(f"- {s.name}: {s.description}" for s in self.offered)
        prompt = (f"Goal: {state['goal']}\n\nTools:\n{listing}\n\n"
                  f"Results so far:\n{_observations(state['steps'])}\n\n"
                  "Pick the tool that brings the goal closer, with its arguments"
                  + (f", or {FINISH} when the results answer the goal." if state["steps"]
                     else "."))
        raw = await self._ask(prompt, "You are an agent that reaches goals by calling "
                              "tools. Reply with JSON only.",
                              choice_schema(self.offered, allow_finish=bool(state["steps"])),
                              max_tokens=160)
        try:
            choice = json.loads(raw)
        except ValueError:
            choice = {"tool": FINISH, "arguments": {}}
        if not isinstance(choice, dict) or choice.get("tool") not in self.tools:
            choice = {"tool": FINISH, "arguments": {}}
        return {"choice": choice}

    async def _act(self, state: _State) -> dict[str, Any]:
        choice = state["choice"] or {}
        arguments = choice.get("arguments") if isinstance(choice.get("arguments"), dict) else {}
        tool = self.tools[choice["tool"]]
        result = json.loads(await tool.ainvoke(arguments or {}))
        step = {"tool": tool.name, "arguments": arguments or {}, "result": result}
        return {"steps": [*state["steps"], step]}

    async def _answer(self, state: _State) -> dict[str, Any]:
        prompt = (f"Goal: {state['goal']}\n\nTool results:\n{_observations(state['steps'])}"
                  "\n\nAnswer the goal in one or two sentences, using only these results.")
        return {"answer": (await self._ask(prompt, "You are a concise assistant.", None,
                                           max_tokens=96)).strip()}

    async def _next(self, state: _State) -> str:  # async: see DocGen._after_review
        choice = state["choice"] or {}
        if choice.get("tool") == FINISH or len(state["steps"]) >= state["max_steps"]:
            return "answer"
        return "act"

    async def _after_act(self, state: _State) -> str:
        return "answer" if len(state["steps"]) >= state["max_steps"] else "choose"

    def _build(self) -> Any:
        graph = StateGraph(_State)
        graph.add_node("choose", self._choose)
        graph.add_node("act", self._act)
        graph.add_node("answer", self._answer)
        graph.add_edge(START, "choose")
        graph.add_conditional_edges("choose", self._next, {"act": "act", "answer": "answer"})
        graph.add_conditional_edges("act", self._after_act,
                                    {"choose": "choose", "answer": "answer"})
        graph.add_edge("answer", END)
        return graph.compile()

    async def run(self, request: AgentRequest) -> AgentRun:
        self.offered = rank(request.goal, self.specs)
        if not self.offered:
            raise WrongState("The tool catalog is empty: discover some services first.")
        state: _State = {"goal": request.goal, "max_steps": request.max_steps, "steps": [],
                         "choice": None, "answer": ""}
        final = await self.graph.ainvoke(state, {"recursion_limit": 4 * request.max_steps + 4})
        return AgentRun(id=new_id(), goal=request.goal, status="completed",
                        steps=[AgentStep(**s) for s in final["steps"]],
                        answer=final["answer"], offered_tools=[s.name for s in self.offered])
