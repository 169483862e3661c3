"""`llmdocs prompts ...`: the prompt-store from the terminal."""

from __future__ import annotations

from llmdocs.cli_support import service_cli
from llmdocs.services.promptstore import spec
from llmdocs.services.promptstore.client import PromptStoreClient

cli = service_cli(spec, PromptStoreClient, name="prompts")
