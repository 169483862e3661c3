"""A LangGraph agent answers a question with a registered service's MCP tools: LangChain
tools adapted from an MCP client session over streamable HTTP, a scripted chat model
speaking the tool-call format, and the real bookshop service answering the call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import mcp.types as types
import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from mcp import Client

from llmdocs.core.config import Settings
from mcp_services.servicetools import Serve, register, session, start_shop


def langchain_tools(client: Client, tools: Sequence[types.Tool]) -> list[BaseTool]:
    """Each MCP tool as a LangChain tool whose call is an MCP tools/call; the model
    reads the tool's text content, errors included."""

    def adapted(tool: types.Tool) -> BaseTool:
        async def call(**arguments: Any) -> str:
            result = await client.call_tool(tool.name, arguments)
            return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))

        return StructuredTool.from_function(coroutine=call, name=tool.name,
                                            description=tool.description or tool.name,
                                            args_schema=tool.input_schema, infer_schema=False)

    return [adapted(tool) for tool in tools]


class ScriptedModel(BaseChatModel):
    """Speaks the tool-call format as a model would: asked a question, it calls the
    book-search tool it was given; shown the tool's answer, it answers from it."""

    offered: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(update={"offered": [t.name for t in tools]})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        raise NotImplementedError("async only")

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            search = next(name for name in self.offered if name.endswith("find_books"))
            reply = AIMessage(content="", tool_calls=[{
                "name": search, "args": {"author": "Le Guin"}, "id": "call-1"}])
        else:
            assert isinstance(last, ToolMessage)
            books = json.loads(str(last.content))["body"]
            reply = AIMessage(content="; ".join(f"{b['title']} is on shelf {b['shelf']}"
                                                for b in books))
        return ChatResult(generations=[ChatGeneration(message=reply)])


def agent(model: BaseChatModel, tools: list[BaseTool]) -> Any:
    """The usual LangGraph tool loop: the model speaks, its tool calls run, repeat."""
    bound = model.bind_tools(tools)

    async def speak(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", speak)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


async def test_an_agent_answers_from_the_running_service(
        settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_DISCOVERY_DISCOVER_ON_START", "false")
    monkeypatch.setenv("LLMDOCS_DISCOVERY_WATCH_INTERVAL_SECONDS", "0")
    shop = await start_shop(settings, serve)
    await register(shop)
    async with session(shop.mcp_url(), shop.token()) as client:
        tools = langchain_tools(client, (await client.list_tools()).tools)
        result = await agent(ScriptedModel(), tools).ainvoke(
            {"messages": [HumanMessage("Where is Le Guin's book in the shop?")]},
            {"recursion_limit": 6})

    answer = result["messages"][-1]
    assert answer.content == "The Left Hand of Darkness is on shelf SF-7"
    assert shop.seen == ["GET /books"]  # the answer came from the service, by one call
    calls = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in calls] == ["bookshop__find_books"]
