"""`llmdocs interpreter ...`: the interpreter from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.interpreter import spec
from llmdocs.services.interpreter.client import InterpreterClient

cli = service_cli(spec, InterpreterClient, name="interpreter")
