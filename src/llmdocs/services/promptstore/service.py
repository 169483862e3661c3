"""The prompt-store's domain logic: prompts, versions, labels, lifecycle, rendering,
search, A/B tests, analytics and the quality tools. It knows nothing of HTTP; its
refusals are the domain errors of `errors.py`."""

from __future__ import annotations

from llmdocs.services.promptstore.analytics import Analytics
from llmdocs.services.promptstore.experiments import Experiments
from llmdocs.services.promptstore.quality_tools import QualityTools
from llmdocs.services.promptstore.spaces import PromptSpaces


class PromptStore(Experiments, Analytics, QualityTools, PromptSpaces):
    """One per app: the prompts with their A/B tests, analytics and quality tools."""
