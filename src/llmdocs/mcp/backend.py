"""What the MCP server calls: the services' own clients, each call made with the MCP
session user's rights, so spaces and roles apply as they do over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass

from llmdocs.core.auth import Principal
from llmdocs.core.client import acting_for
from llmdocs.core.config import Settings
from llmdocs.services.analysis.client import AnalysisClient
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.interpreter import LONG_CALL_SECONDS
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.orchestrator.client import OrchestratorClient
from llmdocs.services.promptstore.client import PromptStoreClient

ACTOR = "interpreter"  # the service an HTTP session's calls are delegated through


@dataclass
class Backend:
    """The clients of one MCP server; `token` set: a stdio server, calling with the
    user's own token; unset: the interpreter's, delegating each session's caller."""

    settings: Settings
    docs: DocStoreClient
    prompts: PromptStoreClient
    orchestrator: OrchestratorClient
    analysis: AnalysisClient
    interpreter: InterpreterClient

    @classmethod
    def open(cls, settings: Settings, token: str | None = None) -> Backend:
        caller = None if token else ACTOR
        long = settings.waiting_up_to(LONG_CALL_SECONDS)
        return cls(settings,
                   docs=DocStoreClient.for_service(settings, caller=caller, token=token),
                   prompts=PromptStoreClient.for_service(settings, caller=caller, token=token),
                   orchestrator=OrchestratorClient.for_service(settings, caller=caller,
                                                               token=token),
                   analysis=AnalysisClient.for_service(settings, caller=caller, token=token),
                   interpreter=InterpreterClient.for_service(long, caller=caller, token=token))

    async def aclose(self) -> None:
        async with AsyncExitStack() as stack:
            for client in (self.docs, self.prompts, self.orchestrator, self.analysis,
                           self.interpreter):
                stack.push_async_callback(client.aclose)

    @contextmanager
    def acting_for(self, principal: Principal | None) -> Iterator[None]:
        """Calls inside carry `principal`'s delegated token (HTTP), or the user's own
        token the stdio server was started with (`principal` None)."""
        if principal is None:
            yield
            return
        with acting_for(self.settings, ACTOR, principal):
            yield
