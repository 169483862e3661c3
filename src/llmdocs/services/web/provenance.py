"""A provenance record shaped for its page: the steps on one time axis, the model calls
with their totals, the prompts, the sources and the quality scores. The record is
anyone's JSON (stored with the document): every value is checked for its type here and
escaped by the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BAR_WIDTH = 300  # the timeline's SVG width, in its own units


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    duration_ms: float
    offset: int  # where its bar starts and how long it is, out of BAR_WIDTH
    width: int
    detail: str | None


@dataclass
class Provenance:
    workflow: dict[str, Any]
    steps: list[Step]
    total_ms: float
    chain: list[str]
    calls: list[dict[str, Any]]  # service calls: service, operation, step, at
    prompts: list[dict[str, Any]]
    model_calls: list[dict[str, Any]]
    totals: dict[str, float] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    quality: list[tuple[str, Any]] = field(default_factory=list)
    query: str | None = None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _steps(raw: list[dict[str, Any]]) -> tuple[list[Step], float]:
    """Each step's bar on the run's time axis (from the first start to the last end)."""
    timed = [(step, _when(step.get("started_at")), _number(step.get("duration_ms")))
             for step in raw]
    starts = [start for _, start, _ in timed if start is not None]
    origin = min(starts) if starts else None
    ends = [(start - origin).total_seconds() * 1000 + ms
            for _, start, ms in timed if start is not None and origin is not None]
    total = max(ends, default=sum(ms for _, _, ms in timed)) or 1.0
    steps, cursor = [], 0.0
    for step, start, ms in timed:
        at = (start - origin).total_seconds() * 1000 if start and origin else cursor
        cursor = at + ms
        steps.append(Step(str(step.get("name", "?")), str(step.get("status", "")), ms,
                          round(at / total * BAR_WIDTH),
                          max(1, round(ms / total * BAR_WIDTH)),
                          str(step["detail"]) if step.get("detail") else None))
    return steps, total


def _quality(metrics: Any) -> list[tuple[str, Any]]:
    """The scores and counts worth a row: numbers, yes/no, and short text."""
    if not isinstance(metrics, dict):
        return []
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) < 300):
            rows.append((key.replace("_", " "), value))
        elif isinstance(value, list):
            rows.append((key.replace("_", " "), len(value)))
    return rows


def timeline(record: dict[str, Any]) -> Provenance:
    """The record as the provenance page shows it."""
    workflow = record.get("workflow_execution")
    workflow = workflow if isinstance(workflow, dict) else {}
    steps, total = _steps(_dicts(workflow.get("steps")))
    model_calls = _dicts(record.get("llm_calls"))
    tokens = [call.get("tokens") for call in model_calls]
    lineage = record.get("data_lineage")
    user_context = record.get("user_context")
    chain = record.get("services_chain")
    return Provenance(
        workflow={k: v for k, v in workflow.items() if k != "steps"},
        steps=steps, total_ms=total,
        chain=[str(s) for s in chain] if isinstance(chain, list) else [],
        calls=_dicts(record.get("service_calls")),
        prompts=_dicts(record.get("prompts_used")),
        model_calls=model_calls,
        totals={"cost": sum(_number(c.get("cost")) for c in model_calls),
                "tokens": sum(_number(t.get("prompt")) + _number(t.get("completion"))
                              for t in tokens if isinstance(t, dict)),
                "latency_ms": sum(_number(c.get("latency_ms")) for c in model_calls),
                "cached": sum(1 for c in model_calls if c.get("cached") is True)},
        sources=_dicts(lineage.get("sources")) if isinstance(lineage, dict) else [],
        quality=_quality(record.get("quality_metrics")),
        query=str(user_context["query"]) if isinstance(user_context, dict)
        and user_context.get("query") else None)
