"""The interpreter's refusals, raised by the domain code; `api.py` says them as problems."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class Refused(DomainError):
    """A request the interpreter will not carry out; `errors` name the fields at fault."""


class CannotRun(Refused):
    """What the request asks for cannot be mapped to an action or run."""


class NotAllowed(Refused):
    """The caller may not touch it: another user's, or a scope the token lacks."""


class NoSuch(Refused):
    """No such execution, or nothing of the kind recorded for it."""


class NothingToCancel(Refused):
    """The execution has no run to stop."""

