"""The quality tools on stored prompts: lint, bias check and optimisation, the last
two asking the llm-gateway; the checks themselves are in `quality.py`."""

from __future__ import annotations

from typing import Any

import structlog

from llmdocs.core.client import ServiceError, ServiceUnavailable, UpstreamError
from llmdocs.services.promptstore import quality, templates
from llmdocs.services.promptstore.errors import (
    GatewayRefused,
    GatewayUnavailable,
    Invalid,
    PromptStoreError,
)
from llmdocs.services.promptstore.models import (
    Prompt,
    PromptVersion,
)
from llmdocs.services.promptstore.prompts import Prompts, stored_content
from llmdocs.services.promptstore.schemas import (
    BiasOut,
    LintIn,
    LintOut,
    OptimizeIn,
    OptimizeOut,
    Variable,
    VersionIn,
    VersionOut,
)

log = structlog.get_logger(__name__)


class QualityTools(Prompts):
    """Lint, bias check and optimisation of the store's prompts."""

    async def _sources(self, ref: str, version: int | None) -> tuple[
            Prompt, PromptVersion]:
        async with self.db.session() as session:
            prompt = await self._prompt(session, ref)
            return prompt, await self._version(session, prompt,
                                               version or prompt.latest_version)

    async def lint(self, ref: str | None, body: LintIn) -> LintOut:
        if ref is None:
            if body.content is None:
                raise Invalid("Give the content to lint.",
                              [{"field": "content", "message": "required"}])
            kind: str = body.type
            stored = stored_content(body.type, body.content)
            declared = None if body.variables is None else [v.name for v in body.variables]
        else:
            prompt, row = await self._sources(ref, body.version)
            kind, stored = prompt.type, row.content
            declared = [str(v["name"]) for v in row.variables]
        findings, used, tokens = quality.lint(templates.template_sources(kind, stored),
                                              declared)
        return LintOut(ok=not any(f.severity == "error" for f in findings),
                       findings=findings, variables_used=used, estimated_tokens=tokens)

    async def bias_check(self, ref: str, version: int | None, llm: bool) -> BiasOut:
        prompt, row = await self._sources(ref, version)
        text = "\n".join(s for _, s in templates.template_sources(prompt.type, row.content))
        findings = quality.bias_findings(text)
        if not llm:
            return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                           llm_check="skipped")
        try:
            answer = await self._query(BIAS_PROMPT.format(text=text), temperature=0.0)
        except PromptStoreError as exc:
            log.warning("bias llm check unavailable", error=exc.detail)
            return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                           llm_check="unavailable", llm_notes=exc.detail)
        return BiasOut(findings=findings, word_list=quality.WORD_LIST_NAME,
                       llm_check="done", llm_notes=str(answer.get("response", "")).strip())

    async def _query(self, prompt: str, temperature: float) -> dict[str, Any]:
        """One `/query` to the llm-gateway; unreachable or failing → 503 naming it."""
        if self.gateway is None:
            raise GatewayUnavailable("The llm-gateway is not configured for the prompt-store.")
        try:
            answer = await self.gateway.post_json("/query", {
                "prompt": prompt, "max_tokens": 1024, "temperature": temperature})
        except (ServiceUnavailable, UpstreamError) as exc:
            raise GatewayUnavailable(f"The llm-gateway is unavailable: {exc}") from None
        except ServiceError as exc:
            raise GatewayRefused(f"The llm-gateway refused the request: {exc}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("response"), str):
            raise GatewayRefused("The llm-gateway answered without a 'response' text.")
        return answer

    async def optimize(self, ref: str, body: OptimizeIn, by: str) -> OptimizeOut:
        """Ask the gateway for variations of a text prompt; keep those that parse and use
        exactly the original's variables, as draft versions ready for an A/B test."""
        prompt, row = await self._sources(ref, body.version)
        if prompt.type != "text":
            raise Invalid("Optimization works on text prompts only.")
        needed = set(templates.variables_of([("content", row.content)]))
        created: list[VersionOut] = []
        rejected: list[dict[str, Any]] = []
        answer: dict[str, Any] = {}
        for index in range(body.variations):
            answer = await self._query(OPTIMIZE_PROMPT.format(
                goal=OPTIMIZE_GOALS[body.optimization_type], template=row.content,
                variables=", ".join(sorted(needed)) or "none"), temperature=0.7)
            candidate = _strip_fences(answer["response"])
            reason = _variation_problem(candidate, row.content, needed)
            if reason:
                rejected.append({"index": index, "reason": reason, "text": candidate[:2000]})
                continue
            created.append(await self.add_version(prompt.id, VersionIn(
                content=candidate, variables=[Variable.model_validate(v)
                                              for v in row.variables],
                config=row.config, state="draft",
                message=f"optimize:{body.optimization_type} of v{row.version} via "
                        f"{answer.get('provider')}/{answer.get('model')}"), by))
        return OptimizeOut(prompt_id=prompt.id, base_version=row.version, created=created,
                           rejected=rejected, provider=answer.get("provider"),
                           model=answer.get("model"))


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped.strip()


def _variation_problem(candidate: str, original: str, needed: set[str]) -> str | None:
    if not candidate:
        return "empty"
    if candidate == original.strip():
        return "identical to the original"
    try:
        used = set(templates.parse(candidate).variables)
    except templates.TemplateProblem as exc:
        return str(exc)
    if used != needed:
        parts = [f"missing {sorted(needed - used)}" if needed - used else "",
                 f"unknown {sorted(used - needed)}" if used - needed else ""]
        return "variables differ: " + ", ".join(p for p in parts if p)
    return None


OPTIMIZE_GOALS = {
    "clarity": "clearer and less ambiguous",
    "brevity": "shorter without losing any instruction",
    "specificity": "more specific about the expected output",
    "structure": "better structured, with short labelled sections",
}
OPTIMIZE_PROMPT = """Rewrite the prompt template below to make it {goal}.
Keep every Jinja2 placeholder exactly as written (variables: {variables}); add no new ones.
Answer with the rewritten template only, no commentary.

Template:
{template}"""
BIAS_PROMPT = """Review this prompt for biased, exclusionary or stereotyping language.
List each problem on its own line as: phrase - why - neutral alternative.
Answer "none" if there is none.

Prompt:
{text}"""
