"""Rendering a resolved prompt with checked values: shared by the service and by the
client, which renders locally so that generation goes on while the store is down."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llmdocs.services.promptstore import templates
from llmdocs.services.promptstore.errors import Invalid
from llmdocs.services.promptstore.schemas import ChatMessage, Rendered, Resolved


def _values(variables: Sequence[Mapping[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """The values to render with: unknown and missing variables are a 422 naming them."""
    declared = {str(v["name"]): v for v in variables}
    unknown = sorted(set(given) - set(declared))
    missing = [name for name, v in declared.items() if v.get("required", True)
               and v.get("default") is None and name not in given]
    errors = [{"field": f"variables.{n}", "message": "unknown variable"} for n in unknown]
    errors += [{"field": f"variables.{n}", "message": "missing variable"} for n in missing]
    if errors:
        parts = ([f"unknown: {', '.join(unknown)}"] if unknown else []) + (
            [f"missing: {', '.join(missing)}"] if missing else [])
        raise Invalid(f"Variables do not match the prompt ({'; '.join(parts)}).", errors)
    values = {name: ("" if v.get("default") is None else v["default"])
              for name, v in declared.items()}
    values.update(given)
    return values


def render(resolved: Resolved, given: Mapping[str, Any]) -> Rendered:
    """Render a resolved prompt with checked values (also used by the client offline)."""
    values = _values([v.model_dump() for v in resolved.variables], given)
    try:
        if isinstance(resolved.content, str):
            text: str | None = templates.render(resolved.content, values)
            messages = None
            digest = templates.content_hash(text or "")
        else:
            text = None
            messages = [ChatMessage(role=m.role, content=templates.render(m.content, values))
                        for m in resolved.content]
            digest = templates.content_hash(json.dumps([m.model_dump() for m in messages]))
    except templates.TemplateProblem as exc:
        raise Invalid(str(exc), exc.errors) from None
    return Rendered(prompt_id=resolved.prompt_id, name=resolved.name,
                    version=resolved.version, label=resolved.label, text=text,
                    messages=messages, config=resolved.config, rendered_hash=digest,
                    ab_test=resolved.ab_test)
