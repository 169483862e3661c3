"""Request and response models of the prompt-store."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmdocs.core.bounded import StorableJson
from llmdocs.core.db import INT4_MAX, StorableText, UtcDateTime
from llmdocs.core.spaces import DEFAULT_SPACE, SpaceName

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,199}$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
PromptType = Literal["text", "chat"]
State = Literal["draft", "published", "deprecated", "archived"]
Metric = Literal["success", "score", "latency_ms", "cost"]
WEIGHT_TOTALS = (1.0, 100.0)  # fractions or percentages


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: StorableText


class Variable(BaseModel):
    """A declared template variable; a plain string in requests means a required one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: StorableText = ""
    required: bool = True
    default: Annotated[Any, StorableJson] = None


Content = StorableText | list[ChatMessage]


def _variables(value: Any) -> Any:
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class VersionIn(BaseModel):
    """A new version of an existing prompt."""

    model_config = ConfigDict(extra="forbid")

    content: Content
    variables: list[Variable] | None = None  # None: discovered from the template
    config: Annotated[dict[str, Any], StorableJson] = Field(default_factory=dict)  # model, ...
    message: StorableText = Field("", max_length=2000)
    labels: list[str] = Field(default_factory=list)
    state: Literal["draft", "published"] = "published"

    _normalise = field_validator("variables", mode="before")(_variables)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return _check_labels(value)


class PromptIn(VersionIn):
    name: str = Field(pattern=NAME_PATTERN)
    type: PromptType = "text"
    category: StorableText = Field("general", min_length=1, max_length=100)
    description: StorableText = Field("", max_length=5000)
    tags: list[StorableText] = Field(default_factory=list, max_length=50)
    labels: list[str] = Field(default_factory=lambda: ["production"])
    space: SpaceName = Field(DEFAULT_SPACE, description="the space it belongs to")


def _check_labels(labels: list[str]) -> list[str]:
    import re

    for label in labels:
        if label == "latest":
            raise ValueError("'latest' is maintained automatically and cannot be set")
        if not re.match(LABEL_PATTERN, label):
            raise ValueError(f"label {label!r} must match {LABEL_PATTERN}")
    return labels


class PromptPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: StorableText | None = Field(None, min_length=1, max_length=100)
    description: StorableText | None = Field(None, max_length=5000)
    tags: list[StorableText] | None = Field(None, max_length=50)


class VersionOut(BaseModel):
    version: int
    content: Content
    variables: list[Variable]
    config: dict[str, Any]
    state: State
    message: str
    content_hash: str
    created_by: str
    created_at: UtcDateTime
    labels: list[str] = Field(default_factory=list)


class PromptOut(BaseModel):
    id: str
    name: str
    space: str = DEFAULT_SPACE
    type: PromptType
    category: str
    description: str
    tags: list[str]
    latest_version: int
    forked_from: str | None
    labels: dict[str, int]
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    current: VersionOut | None = None  # the version at `latest`


class PromptPage(BaseModel):
    items: list[PromptOut]
    total: int
    limit: int
    offset: int


class AbAssignment(BaseModel):
    test_id: str
    variants: list[dict[str, Any]]  # [{version, weight}]: enough to assign client-side
    variant: int | None = None  # the version the ab_subject was given


class Resolved(BaseModel):
    """The version to use, as `by-name` answers it."""

    prompt_id: str
    name: str
    space: str = DEFAULT_SPACE
    type: PromptType
    version: int
    label: str | None
    content: Content
    variables: list[Variable]
    config: dict[str, Any]
    state: State
    content_hash: str
    ab_test: AbAssignment | None = None


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: Annotated[dict[str, Any], StorableJson] = Field(default_factory=dict)
    label: StorableText | None = Field(None, max_length=100)
    version: int | None = Field(None, ge=1, le=INT4_MAX)
    ab_subject: StorableText | None = Field(None, max_length=200)


class Rendered(BaseModel):
    prompt_id: str
    name: str
    version: int
    label: str | None
    text: str | None = None  # text prompts
    messages: list[ChatMessage] | None = None  # chat prompts
    config: dict[str, Any]
    rendered_hash: str
    ab_test: AbAssignment | None = None


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: StorableText = Field("", max_length=500)
    category: StorableText | None = Field(None, max_length=100)
    # each tag is one more condition of the query: as many as a prompt may have
    tags: list[StorableText] = Field(default_factory=list, max_length=50,
                                     description="prompts with all these tags (at most 50)")
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0, le=INT4_MAX)


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=INT4_MAX)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: StorableText = Field("production", max_length=100)
    # default: the newest published one before
    version: int | None = Field(None, ge=1, le=INT4_MAX)


class ForkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    version: int | None = Field(None, ge=1, le=INT4_MAX)  # default: latest
    space: SpaceName | None = Field(None, description="default: the original's space")


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: State


class DiffOut(BaseModel):
    prompt_id: str
    from_version: int
    to_version: int
    diff: str
    variables_added: list[str]
    variables_removed: list[str]
    config_changed: bool


class LintIn(BaseModel):
    """Lint unsaved content, or (for `/prompts/{id}/lint`) a stored version."""

    model_config = ConfigDict(extra="forbid")

    type: PromptType = "text"
    content: Content | None = None
    variables: list[Variable] | None = None
    version: int | None = Field(None, ge=1, le=INT4_MAX)

    _normalise = field_validator("variables", mode="before")(_variables)


class Finding(BaseModel):
    code: str
    severity: Literal["error", "warning", "info"]
    message: str
    line: int | None = None
    column: int | None = None
    suggestion: str | None = None


class LintOut(BaseModel):
    ok: bool  # no errors (warnings allowed)
    findings: list[Finding]
    variables_used: list[str]
    estimated_tokens: int


class BiasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, le=INT4_MAX)
    llm: bool = False  # also ask the llm-gateway


class BiasOut(BaseModel):
    findings: list[Finding]
    word_list: str  # which list was used (see quality.py)
    llm_check: Literal["skipped", "done", "unavailable"]
    llm_notes: str | None = None


class OptimizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    optimization_type: Literal["clarity", "brevity", "specificity", "structure"]
    variations: int = Field(2, ge=1, le=5)
    version: int | None = Field(None, ge=1, le=INT4_MAX)


class OptimizeOut(BaseModel):
    prompt_id: str
    base_version: int
    created: list[VersionOut]
    rejected: list[dict[str, Any]]  # variations that broke the template, and why
    provider: str | None = None
    model: str | None = None


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=INT4_MAX)
    weight: float = Field(gt=0)


class AbTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: StorableText = Field(max_length=200, description="the prompt's id or name")
    name: StorableText = Field(min_length=1, max_length=200)
    variants: list[VariantIn] = Field(min_length=2, max_length=10)  # first is control
    metric: Metric = "success"
    significance: float = Field(0.05, gt=0, lt=0.5)
    min_samples: int = Field(30, ge=2, le=INT4_MAX)
    auto_stop: bool = True
    promote_label: str | None = "production"

    @field_validator("variants")
    @classmethod
    def _weights(cls, value: list[VariantIn]) -> list[VariantIn]:
        versions = [v.version for v in value]
        if len(set(versions)) != len(versions):
            raise ValueError("each version may appear only once")
        total = sum(v.weight for v in value)
        if not any(abs(total - whole) < 1e-6 * whole for whole in WEIGHT_TOTALS):
            raise ValueError(f"the weights sum to {total:g}; they must sum to 1 or 100")
        return value

    @field_validator("promote_label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return None if value is None else _check_labels([value])[0]


class AbTestOut(BaseModel):
    id: str
    prompt_id: str
    name: str
    status: Literal["running", "stopped", "completed"]
    variants: list[dict[str, Any]]
    metric: Metric
    significance: float
    min_samples: int
    auto_stop: bool
    promote_label: str | None
    winner: int | None
    created_at: UtcDateTime
    stopped_at: UtcDateTime | None


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=INT4_MAX)
    subject: StorableText | None = Field(None, max_length=200)
    success: bool | None = None
    score: float | None = None
    latency_ms: float | None = Field(None, ge=0)
    cost: float | None = Field(None, ge=0)


class VariantResult(BaseModel):
    version: int
    weight: float
    n: int
    mean: float | None
    interval: tuple[float, float] | None
    p_value: float | None = None  # against control
    statistic: float | None = None
    difference: float | None = None
    significant: bool = False


class AbResults(BaseModel):
    test: AbTestOut
    metric: Metric
    confidence: float
    test_kind: str
    variants: list[VariantResult]
    winner: int | None  # the winner by the test's rule, at this moment


class SubjectAssignment(BaseModel):
    test_id: str
    subject: str
    version: int


class VersionUsage(BaseModel):
    version: int
    uses: int
    renders: int
    completions: int
    successes: int
    failures: int
    success_rate: float | None
    tokens: int
    cost: float
    mean_latency_ms: float | None


class PromptAnalytics(BaseModel):
    prompt_id: str
    name: str
    totals: VersionUsage  # version 0 here means "all versions"
    versions: list[VersionUsage]
