"""What a diff answers: each change with its kind, place and breakingness, and the rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Side = Literal["parameter", "request", "response"]

# kind → when it breaks a client (docs/apidiff.md is this table in prose)
RULES: dict[str, str] = {
    "operation.added": "never",
    "operation.removed": "always",
    "operation.deprecated": "never (a warning to move off it)",
    "parameter.added": "when the new parameter is required",
    "parameter.removed": "always (clients still send it)",
    "parameter.required": "always (an optional parameter became required)",
    "parameter.optional": "never",
    "parameter.type": "unless integer widens to number",
    "parameter.constraint": "when it narrows what a client may send",
    "parameter.default": "when an optional parameter's default changes",
    "request.body_added": "when the new body is required",
    "request.body_removed": "always",
    "request.body_required": "always (an optional body became required)",
    "request.media_added": "never",
    "request.media_removed": "always",
    "request.field_added": "when the new field is required",
    "request.field_removed": "always (clients still send it)",
    "request.field_required": "always",
    "request.field_optional": "never",
    "request.field_type": "unless integer widens to number",
    "request.constraint": "when it narrows what a client may send",
    "request.nullable": "when null is no longer accepted",
    "request.default": "when the default of a field changes",
    "request.variant_added": "never",
    "request.variant_removed": "always",
    "response.status_added": "never",
    "response.status_removed": "for a success (2xx) or default status",
    "response.media_added": "never",
    "response.media_removed": "always",
    "response.field_added": "never",
    "response.field_removed": "always (clients may read it)",
    "response.field_required": "never",
    "response.field_optional": "always (it may now be missing)",
    "response.field_type": "unless number narrows to integer",
    "response.constraint": "when it widens what a client may receive",
    "response.nullable": "when null may now be returned",
    "response.variant_added": "always (clients meet a shape they do not know)",
    "response.variant_removed": "never",
    "response.header_added": "never",
    "response.header_removed": "always",
    "enum.value_added": "in a response (clients meet a value they do not know)",
    "enum.value_removed": "in a request or parameter (clients may still send it)",
    "security.changed": "when an accepted way to authenticate is gone",
    "server.added": "never",
    "server.removed": "never (clients configure their server)",
    "summary.changed": "never (it makes documents stale)",
    "description.changed": "never (it makes documents stale)",
}


class Change(BaseModel):
    kind: str
    operation: str | None  # "DELETE /sessions/{session_id}", None outside operations
    location: str  # JSON pointer into the head spec (the base spec for what was removed)
    breaking: bool
    message: str
    before: Any = None
    after: Any = None


class Summary(BaseModel):
    breaking: int = 0
    non_breaking: int = 0


class Diff(BaseModel):
    changes: list[Change] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)

    @classmethod
    def of(cls, changes: list[Change]) -> Diff:
        """The diff with its summary counted."""
        breaking = sum(c.breaking for c in changes)
        return cls(changes=changes, summary=Summary(breaking=breaking,
                                                    non_breaking=len(changes) - breaking))

    def ordered(self) -> list[Change]:
        """Breaking changes first, each group in the spec's order."""
        return sorted(self.changes, key=lambda c: not c.breaking)


def pointer(*parts: str | int) -> str:
    """A JSON pointer of `parts`, each escaped (`/` as `~1`, `~` as `~0`)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
