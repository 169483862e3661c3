"""What the portal's domain code refuses."""

from __future__ import annotations

from llmdocs.core.errors import DomainError


class SignInRefused(DomainError):
    """A sign-in link, token or provider answer that signs nobody in."""


class SignInNeeded(Exception):
    """The page needs a signed-in user and there is none (or the session ended)."""
