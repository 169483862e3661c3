"""The prompt linter and the bias check: a short, documented word list of terms style
guides flag, each with a neutral suggestion; it flags wording, not intent."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from llmdocs.services.promptstore.schemas import Finding
from llmdocs.services.promptstore.templates import TemplateProblem, variables_of

LONG_PROMPT_TOKENS = 3000  # estimated tokens above which a prompt is "very long"
WORD_LIST_NAME = "llmdocs-inclusive-language-v1"

# term (regex, case-insensitive, on word boundaries) → (category, suggestion)
BIAS_TERMS: dict[str, tuple[str, str]] = {
    r"chairman": ("gendered", "chair, chairperson"),
    r"manpower": ("gendered", "workforce, staff"),
    r"man-hours?": ("gendered", "person-hours, effort"),
    r"mankind": ("gendered", "humanity, people"),
    r"guys": ("gendered", "everyone, folks, team"),
    r"he or she|he/she|s/he": ("gendered", "they"),
    r"businessm[ae]n": ("gendered", "businessperson, professional"),
    r"salesm[ae]n": ("gendered", "salesperson"),
    r"crazy|insane": ("ableist", "surprising, unexpected, wild"),
    r"lame": ("ableist", "weak, poor"),
    r"dumb": ("ableist", "simple, basic"),
    r"blind spot": ("ableist", "gap, oversight"),
    r"sanity check": ("ableist", "quick check, confidence check"),
    r"cripple[sd]?": ("ableist", "slow down, impair"),
    r"master/slave|slave": ("exclusionary", "primary/replica, leader/follower"),
    r"whitelist(?:ed|ing)?": ("exclusionary", "allowlist"),
    r"blacklist(?:ed|ing)?": ("exclusionary", "denylist, blocklist"),
    r"grandfathered": ("exclusionary", "legacy, exempt"),
    r"native speakers?": ("exclusionary", "fluent speaker"),
    r"old-timers?|elderly": ("age", "experienced person, older adult"),
    r"digital natives?": ("age", "people comfortable with technology"),
}
_BIAS = [(re.compile(rf"\b(?:{term})\b", re.IGNORECASE), category, suggestion)
         for term, (category, suggestion) in BIAS_TERMS.items()]

# pairs of instructions that cannot both be followed
_CONFLICTS: list[tuple[str, str, str]] = [
    (r"\b(?:be (?:brief|concise)|keep it short|short answer)", r"\b(?:in (?:great )?detail|"
     r"be (?:detailed|thorough|comprehensive|exhaustive))", "brevity vs. detail"),
    (r"\b(?:use|format (?:it |the answer )?(?:as|in)) markdown",
     r"\b(?:plain text only|(?:do not|don't|never) use markdown)", "markdown vs. plain text"),
    (r"\b(?:be )?formal\b", r"\b(?:be )?(?:casual|informal)\b", "formal vs. casual tone"),
    (r"\b(?:answer|respond|reply) (?:only )?(?:in|with) json",
     r"\b(?:do not|don't|never) (?:answer|respond|reply) (?:in|with) json",
     "JSON vs. no JSON"),
]
_ALWAYS = re.compile(r"\balways ((?:\w+ ){0,2}\w+)", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")


def estimated_tokens(text: str) -> int:
    """Rough token count (about four characters per token for English prose)."""
    return (len(text) + 3) // 4


def _line_of(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _empty_sections(text: str) -> Iterable[Finding]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _HEADING.match(line):
            continue
        rest = lines[i + 1:]
        body = []
        for following in rest:
            if _HEADING.match(following):
                break
            body.append(following)
        if not "".join(body).strip():
            yield Finding(code="empty-section", severity="warning", line=i + 1,
                          message=f"The section '{line.strip()}' has no content.")


def _conflicts(text: str) -> Iterable[Finding]:
    for first, second, what in _CONFLICTS:
        a = re.search(first, text, re.IGNORECASE)
        b = re.search(second, text, re.IGNORECASE)
        if a and b:
            line, _ = _line_of(text, b.start())
            yield Finding(code="conflicting-instructions", severity="warning", line=line,
                          message=f"Conflicting instructions ({what}): '{a.group(0)}' and "
                                  f"'{b.group(0)}'.")
    for match in _ALWAYS.finditer(text):
        never = re.search(rf"\b(?:never|do not|don't) {re.escape(match.group(1))}\b", text,
                          re.IGNORECASE)
        if never:
            line, _ = _line_of(text, never.start())
            yield Finding(code="conflicting-instructions", severity="warning", line=line,
                          message=f"'{match.group(0)}' conflicts with '{never.group(0)}'.")


def lint(sources: Sequence[tuple[str, str]], declared: Sequence[str] | None) -> tuple[
        list[Finding], list[str], int]:
    """Findings, the variables the templates use, and the estimated token count."""
    try:
        used = list(variables_of(sources))
    except TemplateProblem as exc:
        first = exc.errors[0] if exc.errors else {}
        return ([Finding(code="template-error", severity="error", message=str(exc),
                         line=first.get("line"), column=first.get("column"))], [], 0)
    findings: list[Finding] = []
    if declared is not None:
        for name in used:
            if name not in declared:
                findings.append(Finding(code="undeclared-variable", severity="error",
                                        message=f"'{name}' is used but not declared."))
        for name in declared:
            if name not in used:
                findings.append(Finding(code="unused-variable", severity="warning",
                                        message=f"'{name}' is declared but never used."))
    text = "\n".join(source for _, source in sources)
    for field, source in sources:
        if not source.strip():
            findings.append(Finding(code="empty-section", severity="warning",
                                    message=f"'{field}' is empty."))
    findings += _empty_sections(text)
    findings += _conflicts(text)
    tokens = estimated_tokens(text)
    if tokens > LONG_PROMPT_TOKENS:
        findings.append(Finding(
            code="very-long", severity="warning",
            message=f"About {tokens} tokens (limit {LONG_PROMPT_TOKENS}): long prompts cost "
                    "more and dilute instructions."))
    return findings, used, tokens


def bias_findings(text: str) -> list[Finding]:
    findings = []
    for pattern, category, suggestion in _BIAS:
        for match in pattern.finditer(text):
            line, column = _line_of(text, match.start())
            findings.append(Finding(code=f"bias-{category}", severity="warning", line=line,
                                    column=column, suggestion=suggestion,
                                    message=f"'{match.group(0)}' ({category} language)."))
    return sorted(findings, key=lambda f: (f.line or 0, f.column or 0))
