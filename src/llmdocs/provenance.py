"""What of a document's provenance a reader sees. The user a document was made for, and
the session they asked in, say who asked what and when: only that user and admins see
them; anyone who may read the document sees the rest (inputs, steps, models, costs)."""

from __future__ import annotations

from typing import Any

from llmdocs.core.auth import Principal

PRIVATE = frozenset({"user_id", "session_id"})  # of the provenance's `user_context`


def requester(provenance: dict[str, Any]) -> str | None:
    """The user the document was made for, when the provenance names one."""
    context = provenance.get("user_context")
    user = context.get("user_id") if isinstance(context, dict) else None
    return user if isinstance(user, str) else None


def public(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The provenance without the requesting user's ids."""
    context = provenance.get("user_context") if provenance else None
    if not provenance or not isinstance(context, dict):
        return provenance
    return {**provenance, "user_context": {key: value for key, value in context.items()
                                           if key not in PRIVATE}}


def as_seen_by(provenance: dict[str, Any] | None, reader: Principal,
               admin_scope: str) -> dict[str, Any] | None:
    """Whole to the user it names, to services and to holders of `admin_scope`."""
    if provenance and reader.may_touch(requester(provenance), admin_scope):
        return provenance
    return public(provenance)
