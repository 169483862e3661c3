"""Prompt files (Markdown: `PromptIn`'s fields in a YAML front matter, the body as the
template) and the seed prompts in `seeds/`, created at first start so the system works
out of the box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
import yaml  # type: ignore[import-untyped]

from llmdocs.services.promptstore.errors import Conflict
from llmdocs.services.promptstore.schemas import PromptIn
from llmdocs.services.promptstore.service import PromptStore

SEEDS = Path(__file__).parent / "seeds"
SEED_AUTHOR = "service:promptstore"
log = structlog.get_logger(__name__)


def parse_prompt_file(text: str) -> dict[str, Any]:
    """The fields a prompt file declares; the body (if any) becomes `content`."""
    if not text.startswith("---"):
        raise ValueError("a prompt file starts with a '---' YAML front matter")
    _, front, body = text.split("---", 2) if text.count("---") >= 2 else ("", "", "")
    if not front.strip():
        raise ValueError("the front matter is not closed by a '---' line")
    fields = yaml.safe_load(front)
    if not isinstance(fields, dict):
        raise ValueError("the front matter must be a mapping")
    body = body.removeprefix("\n")
    if body.strip():
        fields["content"] = body
    return fields


def load_seeds(directory: Path = SEEDS) -> list[PromptIn]:
    return [PromptIn.model_validate(parse_prompt_file(path.read_text()))
            for path in sorted(directory.glob("*.md"))]


async def seed(store: PromptStore, directory: Path = SEEDS) -> list[str]:
    """Create every seed prompt that does not exist yet; returns the names created.
    Replicas starting together race harmlessly: the loser gets a name conflict."""
    created = []
    for prompt in load_seeds(directory):
        try:
            await store.create(prompt, SEED_AUTHOR)
        except Conflict:
            continue
        created.append(prompt.name)
    if created:
        log.info("seed prompts created", names=created)
    return created
