"""Every registered operation as a tool an LLM agent can call (LangChain, MCP, OpenAI).
A call acts for the caller: llmdocs services get an on-behalf-of token so they judge the
caller; third-party ones get no llmdocs token, only what the operator configured."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from llmdocs.core.auth import Principal, delegated_token
from llmdocs.core.client import AddressBlocked, ServiceClient, ServiceError
from llmdocs.core.config import Settings
from llmdocs.core.fetch import GuardedTransport
from llmdocs.openapi import Operation
from llmdocs.services import builtin
from llmdocs.services.orchestrator.errors import Invalid
from llmdocs.services.orchestrator.schemas import ServiceDetail, ToolResult
from llmdocs.services.orchestrator.settings import OrchestratorSettings

ToolFormat = Literal["langchain", "mcp", "openai"]
BODY = "body"
MAX_NAME = 64  # OpenAI's limit on function names; MCP clients follow it
MAX_DESCRIPTION = 1024
MAX_TEXT_BODY = 20_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_READ_ONLY = frozenset({"get", "head", "options"})
_IDEMPOTENT = frozenset({"get", "head", "options", "put", "delete"})
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    service: str
    operation: Operation
    base_url: str  # the registered address (an llmdocs service is called at its own)
    api_prefix: str  # what the operation's path is appended to
    arguments: dict[str, tuple[str, str]]  # argument → (location, parameter name)


def _tool_name(service: str, operation_id: str, taken: set[str]) -> str:
    base = _UNSAFE.sub("_", f"{service}__{operation_id}").strip("_")[:MAX_NAME]
    name, n = base, 1
    while name in taken:
        n += 1
        suffix = f"_{n}"
        name = base[:MAX_NAME - len(suffix)] + suffix
    taken.add(name)
    return name


def _description(service: ServiceDetail, op: Operation) -> str:
    what = op.summary or op.description or f"{op.method.upper()} {op.path}"
    text = f"{what} ({service.name}: {op.method.upper()} {op.path})"
    return text[:MAX_DESCRIPTION]


def _input(op: Operation) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The arguments' JSON Schema: one property per parameter (a name used in two
    places gets its location as prefix) and `body` for the request body."""
    names = [p.name for p in op.parameters]
    properties: dict[str, Any] = {}
    required: list[str] = []
    arguments: dict[str, tuple[str, str]] = {}
    for param in op.parameters:
        key = param.name if names.count(param.name) == 1 and param.name != BODY \
            else f"{param.location}_{param.name}"
        schema = dict(param.schema_)
        if param.description and "description" not in schema:
            schema["description"] = param.description
        properties[key] = schema
        arguments[key] = (param.location, param.name)
        if param.required or param.location == "path":
            required.append(key)
    if op.request_body is not None:
        schema = dict(op.request_body.schema_)
        if op.request_body.description and "description" not in schema:
            schema["description"] = op.request_body.description
        properties[BODY] = schema
        arguments[BODY] = ("body", BODY)
        if op.request_body.required:
            required.append(BODY)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema, arguments


def tool_specs(services: Iterable[ServiceDetail]) -> list[ToolSpec]:
    taken: set[str] = set()
    specs = []
    for service in services:
        for op in service.operations:
            schema, arguments = _input(op)
            specs.append(ToolSpec(
                name=_tool_name(service.name, op.operation_id, taken),
                description=_description(service, op), input_schema=schema,
                service=service.name, operation=op, base_url=service.base_url,
                api_prefix=service.api_prefix.rstrip("/"), arguments=arguments))
    return specs


def check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> None:
    """Refuse arguments that do not fit the operation's schema, before any request."""
    try:
        errors = sorted(Draft202012Validator(spec.input_schema).iter_errors(arguments),
                        key=lambda e: list(e.path))
    except SchemaError:  # a third-party schema JSON Schema rejects: let the service judge
        return
    if errors:
        raise Invalid(f"The arguments do not fit tool {spec.name}.", [
            {"field": ".".join(str(p) for p in e.path) or "arguments", "message": e.message}
            for e in errors[:20]])


def _request(spec: ToolSpec, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The request path and httpx arguments for a call; path values are quoted whole,
    so an argument can never climb out of its path segment."""
    path = spec.operation.path
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    for key, value in arguments.items():
        if key not in spec.arguments:
            continue
        location, name = spec.arguments[key]
        if location == "path":
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        elif location == "query":
            params[name] = value
        elif location == "header":
            headers[name] = str(value)
        elif location == "cookie":
            cookies[name] = str(value)
        else:
            body = spec.operation.request_body
            if body is not None and body.content_type == _FORM and isinstance(value, dict):
                kwargs["data"] = value
            else:
                kwargs["json"] = value
    kwargs.update(params=params, headers=headers)
    if cookies:
        kwargs["cookies"] = cookies
    return path, kwargs


class ToolCaller:
    """Performs tool calls as real HTTP requests, for one caller."""

    def __init__(self, settings: Settings, tool_settings: OrchestratorSettings, caller: Principal,
                 caller_token: str) -> None:
        self.settings = settings
        self.tool_settings = tool_settings
        self.caller = caller
        self.caller_token = caller_token  # forwarded only where the operator allows

    def _client(self, spec: ToolSpec) -> tuple[ServiceClient, dict[str, str]]:
        """The client for the tool's service and the headers its calls carry."""
        key = builtin(spec.service)
        if key is not None:
            # as the orchestrator: its certificate goes with its on-behalf-of token
            client = ServiceClient.for_service(
                self.settings, caller="orchestrator", target=key,
                token=delegated_token(self.settings, "orchestrator", self.caller))
            client.retries = 1
            return client, {}
        headers = self.tool_settings.headers_for(spec.service)
        if spec.service in self.tool_settings.forward_caller_token:
            headers["Authorization"] = f"Bearer {self.caller_token}"
        return ServiceClient(spec.base_url, service=spec.service,
                             timeout=self.settings.http_timeout_seconds, retries=1,
                             transport=GuardedTransport(self.settings.blocked_networks)
                             ), headers

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolResult:
        check_arguments(spec, arguments)
        path, kwargs = _request(spec, arguments)
        client, credentials = self._client(spec)
        async with client:
            configured = {name.lower() for name in credentials}  # the operator's win
            headers = {name: value for name, value in kwargs.pop("headers").items()
                       if name.lower() not in configured} | credentials
            try:
                response = await client.request(spec.operation.method,
                                                spec.api_prefix + path,
                                                headers=headers, **kwargs)
            except AddressBlocked as exc:
                raise Invalid(f"Tool {spec.name} is not called: {spec.service} is "
                              f"registered at {spec.base_url}, and {exc.problem['detail']}."
                              ) from None
            except ServiceError as exc:
                return ToolResult(tool=spec.name, status=exc.status, body=exc.problem)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:MAX_TEXT_BODY]
        return ToolResult(tool=spec.name, status=response.status_code, body=body)

    def structured_tool(self, spec: ToolSpec) -> StructuredTool:
        """A LangChain tool a LangGraph workflow can bind; its answer is the JSON of
        the HTTP status and body, errors included, so the model can react to them."""

        async def run(**arguments: Any) -> str:
            try:
                result = await self.call(spec, arguments)
            except Invalid as exc:  # what api.py answers with a 422
                return json.dumps({"status": 422, "error": exc.detail,
                                   "errors": exc.errors})
            return result.model_dump_json()

        return StructuredTool.from_function(
            coroutine=run, name=spec.name, description=spec.description,
            args_schema=spec.input_schema, infer_schema=False)

    def structured_tools(self, specs: Sequence[ToolSpec]) -> list[StructuredTool]:
        return [self.structured_tool(spec) for spec in specs]


def mcp_descriptor(spec: ToolSpec) -> dict[str, Any]:
    """One tool as MCP's tools/list describes it."""
    op = spec.operation
    return {"name": spec.name, "title": op.summary or spec.name,
            "description": spec.description, "inputSchema": spec.input_schema,
            "annotations": {"readOnlyHint": op.method in _READ_ONLY,
                            "destructiveHint": op.method == "delete",
                            "idempotentHint": op.method in _IDEMPOTENT,
                            "openWorldHint": builtin(spec.service) is None}}


def descriptor(spec: ToolSpec, fmt: ToolFormat, caller: ToolCaller) -> dict[str, Any]:
    """One tool as the named format describes tools."""
    if fmt == "mcp":
        return mcp_descriptor(spec)
    op = spec.operation
    tool = caller.structured_tool(spec)
    if fmt == "openai":
        return dict(convert_to_openai_tool(tool))
    return {"name": tool.name, "description": tool.description,
            "args_schema": tool.args_schema, "service": spec.service,
            "method": op.method, "path": op.path, "scopes": op.scopes}
