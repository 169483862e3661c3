"""Typed client of the interpreter: what other services and the CLI use to reach it."""

from __future__ import annotations

from llmdocs.core.client import ServiceClient


class InterpreterClient(ServiceClient):
    service = "interpreter"
