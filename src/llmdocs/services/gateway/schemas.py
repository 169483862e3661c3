"""Request and response models: the OpenAI-compatible API and the gateway's own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmdocs.core.bounded import StorableJson, check_stored_json
from llmdocs.core.db import INT4_MAX, StorableText

CostPreference = Literal["low", "balanced", "quality"]
Performance = Literal["fast", "normal"]
Policy = Literal["local", "redact"]


class GatewayOptions(BaseModel):
    """What the gateway adds to a request (OpenAI clients send these as extra body)."""

    provider: str | None = Field(None, max_length=100)
    cost_preference: CostPreference = "balanced"
    performance_requirement: Performance = "normal"
    policy: Policy = Field("local", description="for sensitive requests: route to a "
                           "trusted provider (local) or redact and route normally")
    cache_ttl: float | None = Field(None, gt=0, le=86_400)


# a count of tokens is a JSON integer, as OpenAI takes it: not "5", true or 5.0; its
# upper bound is a setting (max_tokens_limit) and the model's own limit
TokenCount = Annotated[int, Field(ge=1, strict=True)]
# OpenAI takes at most 4 stop sequences; llama.cpp tests every one at every token
Stop = Annotated[str, Field(max_length=1000)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Annotated[str | list[dict[str, Any]] | None, StorableJson] = None

    @model_validator(mode="after")
    def _storable_extras(self) -> ChatMessage:
        """A message's other fields (name, tool_calls, ...) pass on to the provider and
        into the request's record as they are: JSON every writer can write."""
        check_stored_json(self.model_extra or {})
        return self


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(GatewayOptions):
    model_config = ConfigDict(extra="ignore")  # sampling knobs a provider may not have

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: Stop | Annotated[list[Stop], Field(max_length=4)] | None = None
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: Annotated[dict[str, Any] | None, StorableJson] = None
    user: StorableText | None = Field(None, max_length=200)
    metadata: Annotated[dict[str, Any] | None, StorableJson] = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: StorableText | list[StorableText] = Field(min_length=1)
    user: StorableText | None = Field(None, max_length=200)


class QueryRequest(GatewayOptions):
    # no NUL or lone surrogate, as in a chat completion's messages
    prompt: StorableText = Field(min_length=1, max_length=200_000)
    system: StorableText | None = Field(None, max_length=200_000)  # as the prompt
    model: str | None = Field(None, max_length=200)
    provider: str | None = Field("auto", max_length=100)
    max_tokens: TokenCount | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    json_schema: Annotated[dict[str, Any] | None, StorableJson] = None
    user_id: StorableText | None = Field(None, max_length=200)
    metadata: Annotated[dict[str, Any] | None, StorableJson] = Field(
        None, description="passed to the llmdocs.llm.completed event: prompt_id, "
        "prompt_version")


class Tokens(BaseModel):
    prompt: int
    completion: int


class Finding(BaseModel):
    type: str
    message: int  # the message it is in (-1: another part of the request)
    start: int
    end: int  # the span in the string at `field`
    field: str | None = Field(None, description="where in the request sent to a provider, "
                              "e.g. messages[1].content, messages[0].tool_calls[0].function."
                              "arguments, stop[0], json_schema.properties.*.description")


class Routing(BaseModel):
    reason: str
    sensitive: bool
    findings: list[Finding]


class QueryResponse(BaseModel):
    response: str
    provider: str
    model: str
    tokens: Tokens
    cost: float
    cached: bool
    processing_time: float = Field(description="seconds in the gateway, end to end")
    provider_time: float = Field(0.0, description="seconds the provider took to answer; "
                                 "0 for a cached answer")
    queue_time: float = Field(0.0, description="seconds waiting for the provider's slot "
                              "(a local model answers one call at a time)")
    correlation_id: str | None
    routing: Routing


class BudgetIn(BaseModel):
    limit_usd: float = Field(ge=0, le=1_000_000)
    period: Literal["total", "daily", "monthly"] = Field(
        "total", description="daily and monthly budgets start again each UTC day/month")
    reset: bool = False


class LimitIn(BaseModel):
    rpm: int | None = Field(None, ge=1, le=INT4_MAX, description="requests a minute")
    tpm: int | None = Field(None, ge=1, le=INT4_MAX, description="tokens a minute")
