"""The model's prose, kept to what it adds: no echo of its prompt, no headings of its own."""

from __future__ import annotations

import re
from typing import Any

from llmdocs.services.orchestrator import apidoc

_HEADING_LINE = re.compile(r"^\s*(#{1,6}\s.*|```.*|---+|\|.*)$")


def clean_prose(text: str, limit: int = 700) -> str:
    """Model prose as a paragraph: no headings, fences or tables of its own, no sentence
    twice, cut at a sentence end."""
    lines = [line.strip() for line in text.splitlines() if not _HEADING_LINE.match(line)]
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(line for line in lines if line))
    prose = " ".join(dict.fromkeys(s for s in sentences if s))  # a small model repeats itself
    if len(prose) > limit:
        cut = prose[:limit]
        end = max(cut.rfind(". "), cut.rfind(".\n"))
        prose = cut[: end + 1] if end > limit // 3 else cut.rstrip() + "…"
    return prose.strip()


_WORD = re.compile(r"[a-z0-9]+")


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def drop_echo(text: str, prompt: str, variables: dict[str, Any],
              overlap: float = 0.5) -> str:
    """The model's answer without what it copied from its prompt (a small model often
    repeats its instructions): a line that is a line of the prompt goes, and so does a
    sentence that is mostly word trigrams of the prompt's instructions (the prompt
    without the variables' values, so restating the sources is kept)."""
    instructions = prompt
    for value in sorted((str(v) for v in variables.values()), key=len, reverse=True):
        if len(value) > 3:
            instructions = instructions.replace(value, "\n")
    said = " ".join(_WORD.findall(instructions.lower()))
    grams = _trigrams(said.split())
    prompt_lines = {line.strip() for line in prompt.splitlines() if line.strip()}
    kept: list[str] = []
    for line in text.splitlines():
        if line.strip() in prompt_lines:
            continue
        sentences = re.split(r"(?<=[.!?:])\s+|\s+-\s+", line.strip().lstrip("-*• "))
        mine: list[tuple[str, int]] = []
        for sentence in sentences:
            words = _WORD.findall(sentence.lower())
            own = _trigrams(words)
            if words and " ".join(words) not in said and not (
                    own and len(own & grams) / len(own) >= overlap):
                mine.append((sentence, len(words)))
        if len(mine) < len(sentences):  # an echoed line: its scraps go too
            mine = [(sentence, n) for sentence, n in mine if n >= 4]
        if mine:
            kept.append(" ".join(sentence for sentence, _ in mine))
    return "\n".join(kept)


def fallback_prose(context: dict[str, Any]) -> str:
    """A plain sentence from the sources when the model gave nothing of its own."""
    api = context.get("api")
    if api:
        described = clean_prose(str(api.get("description") or ""), 300)
        ops = len(context.get("operations", []))
        head = f"{api['title']} (version {api['version']}) has {ops} documented endpoints."
        return f"{head} {described}".strip()
    titles = ", ".join(s["title"] or s["document_id"] for s in context["sources"])
    return f"Drawn from {len(context['sources'])} source documents: {titles}."


def errors_asked(request: dict[str, Any]) -> bool:
    """Whether the request or a follow-up's instructions ask for the error codes."""
    return any(apidoc.ERRORS_ASKED.search(text)
               for text in (request["query"], *request.get("instructions", [])))


def asked(request: dict[str, Any]) -> str:
    """The request as the model reads it: with what follow-ups added."""
    return "\n".join([request["query"],
                      *(f"Also: {i}" for i in request.get("instructions", []))])

