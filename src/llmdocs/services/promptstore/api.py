"""HTTP routes of the prompt-store. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from llmdocs.core.auth import Principal, require
from llmdocs.core.db import INT4_MAX, StorableText
from llmdocs.core.errors import domain_problems
from llmdocs.core.idempotency import KeyedRequest, made
from llmdocs.core.spaces import Spaces
from llmdocs.services.promptstore import errors
from llmdocs.services.promptstore.schemas import (
    LABEL_PATTERN,
    AbResults,
    AbTestIn,
    AbTestOut,
    BiasIn,
    BiasOut,
    DiffOut,
    ForkIn,
    LabelIn,
    LintIn,
    LintOut,
    OptimizeIn,
    OptimizeOut,
    OutcomeIn,
    PromptAnalytics,
    PromptIn,
    PromptOut,
    PromptPage,
    PromptPatch,
    Rendered,
    RenderIn,
    Resolved,
    RollbackIn,
    SearchIn,
    StateIn,
    SubjectAssignment,
    VersionIn,
    VersionOut,
)
from llmdocs.services.promptstore.service import PromptStore
from llmdocs.services.promptstore.spaces import check_new

# what a path names, checked before it reaches a query (a NUL or an overlong label was
# a database error)
PromptRef = Annotated[StorableText, Path(min_length=1, max_length=200,
                                         description="the prompt's id or name")]
LabelName = Annotated[str, Path(pattern=LABEL_PATTERN)]
TestId = Annotated[StorableText, Path(min_length=1, max_length=36)]
VersionNumber = Annotated[int, Path(ge=1, le=INT4_MAX)]

STATUS: dict[type[errors.PromptStoreError], int] = {
    errors.Forbidden: 403, errors.NotFound: 404, errors.Conflict: 409, errors.Invalid: 422,
    errors.GatewayRefused: 502, errors.GatewayUnavailable: 503,
}


router = APIRouter(prefix="/api/v1", tags=["prompt-store"],
                   dependencies=[Depends(domain_problems(STATUS))])
READ = Depends(require("prompts:read"))
WRITE = Depends(require("prompts:write"))
Reader = Annotated[Principal, READ]
Writer = Annotated[Principal, WRITE]


async def store(request: Request) -> PromptStore:
    prompt_store: PromptStore = request.app.state.promptstore
    return prompt_store


Store = Annotated[PromptStore, Depends(store)]


# --- prompts ------------------------------------------------------------------------

@router.post("/prompts", status_code=201, response_model=PromptOut,
             summary="Create a prompt (version 1)")
async def create_prompt(body: PromptIn, s: Store, who: Writer, keyed: KeyedRequest,
                        spaces: Spaces) -> Response:
    check_new(body.space, spaces)
    return await keyed.once(s.keys, who.subject, body, lambda: made(s.create(body, who.subject)))


@router.get("/prompts", summary="List prompts, by category and tag, paginated")
async def list_prompts(s: Store, _: Reader, spaces: Spaces,
                       category: Annotated[StorableText | None, Query(max_length=100)] = None,
                       tag: Annotated[list[StorableText] | None, Query(max_length=50)] = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       offset: Annotated[int, Query(ge=0, le=INT4_MAX)] = 0) -> PromptPage:
    return await s.search(SearchIn(category=category, tags=tag or [], limit=limit,
                                   offset=offset), spaces)


@router.post("/prompts/search", summary="Search name, content, description and tags")
async def search_prompts(body: SearchIn, s: Store, _: Reader, spaces: Spaces) -> PromptPage:
    return await s.search(body, spaces)


@router.post("/prompts/lint", summary="Lint unsaved prompt content")
async def lint_content(body: LintIn, s: Store, _: Reader) -> LintOut:
    return await s.lint(None, body)


@router.get("/prompts/by-name/{name}", summary="The version to use: label, version or A/B")
async def by_name(name: PromptRef, s: Store, _: Reader, spaces: Spaces,
                  label: Annotated[StorableText | None, Query(max_length=100)] = None,
                  version: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
                  ab_subject: Annotated[StorableText | None, Query(max_length=200)] = None
                  ) -> Resolved:
    await s.check_prompt(name, spaces, by_name=True)
    resolved = await s.resolve(name, label, version, ab_subject)
    await s.used(resolved, None, ab_subject)
    return resolved


@router.post("/prompts/by-name/{name}/render", summary="Render the version to use")
async def render_by_name(name: PromptRef, body: RenderIn, s: Store, _: Reader,
                         spaces: Spaces) -> Rendered:
    await s.check_prompt(name, spaces, by_name=True)
    return await s.render_named(name, body.variables, body.label, body.version,
                                body.ab_subject)


@router.get("/prompts/{ref}", summary="A prompt by id or name, with labels and latest")
async def get_prompt(ref: PromptRef, s: Store, _: Reader,
                     spaces: Spaces) -> PromptOut:
    await s.check_prompt(ref, spaces)
    return await s.get(ref)


@router.patch("/prompts/{ref}", summary="Change category, description or tags")
async def patch_prompt(ref: PromptRef, body: PromptPatch, s: Store, _: Writer,
                       spaces: Spaces) -> PromptOut:
    await s.check_prompt(ref, spaces, write=True)
    return await s.patch(ref, body)


@router.post("/prompts/{ref}/versions", status_code=201, response_model=VersionOut,
             summary="Add a new version")
async def add_version(ref: PromptRef, body: VersionIn, s: Store, who: Writer,
                      keyed: KeyedRequest, spaces: Spaces) -> Response:
    await s.check_prompt(ref, spaces, write=True)
    return await keyed.once(s.keys, who.subject, body,
                            lambda: made(s.add_version(ref, body, who.subject)))


@router.get("/prompts/{ref}/versions", summary="Version history, newest first")
async def history(ref: PromptRef, s: Store, _: Reader,
                  spaces: Spaces) -> list[VersionOut]:
    await s.check_prompt(ref, spaces)
    return await s.history(ref)


@router.get("/prompts/{ref}/versions/{version}", summary="One version")
async def get_version(ref: PromptRef, version: VersionNumber, s: Store, _: Reader,
                      spaces: Spaces) -> VersionOut:
    await s.check_prompt(ref, spaces)
    return await s.version(ref, version)


@router.put("/prompts/{ref}/versions/{version}/state", summary="Move a version's lifecycle")
async def set_state(ref: PromptRef, version: VersionNumber, body: StateIn, s: Store, _: Writer,
                    spaces: Spaces) -> VersionOut:
    await s.check_prompt(ref, spaces, write=True)
    return await s.set_state(ref, version, body.state)


@router.post("/prompts/{ref}/render", summary="Render a prompt by id with values")
async def render_prompt(ref: PromptRef, body: RenderIn, s: Store, _: Reader,
                        spaces: Spaces) -> Rendered:
    await s.check_prompt(ref, spaces)
    prompt = await s.get(ref)
    return await s.render_named(prompt.name, body.variables, body.label, body.version,
                                body.ab_subject)


@router.get("/prompts/{ref}/diff", summary="Unified diff between two versions")
async def diff(ref: PromptRef, s: Store, _: Reader, spaces: Spaces,
               from_version: Annotated[int, Query(alias="from", ge=1, le=INT4_MAX)],
               to_version: Annotated[int, Query(alias="to", ge=1, le=INT4_MAX)]) -> DiffOut:
    await s.check_prompt(ref, spaces)
    return await s.diff(ref, from_version, to_version)


@router.put("/prompts/{ref}/labels/{label}", summary="Point a label at a version")
async def set_label(ref: PromptRef, label: LabelName, body: LabelIn, s: Store, _: Writer,
                    spaces: Spaces) -> PromptOut:
    await s.check_prompt(ref, spaces, write=True)
    return await s.set_label(ref, label, body.version)


@router.delete("/prompts/{ref}/labels/{label}", summary="Remove a label")
async def delete_label(ref: PromptRef, label: LabelName, s: Store, _: Writer,
                       spaces: Spaces) -> PromptOut:
    await s.check_prompt(ref, spaces, write=True)
    return await s.delete_label(ref, label)


@router.post("/prompts/{ref}/rollback", summary="Move a label back to an older version")
async def rollback(ref: PromptRef, body: RollbackIn, s: Store, _: Writer,
                   spaces: Spaces) -> PromptOut:
    await s.check_prompt(ref, spaces, write=True)
    return await s.rollback(ref, body.label, body.version)


@router.post("/prompts/{ref}/fork", status_code=201, response_model=PromptOut,
             summary="Copy a version to a new name")
async def fork(ref: PromptRef, body: ForkIn, s: Store, who: Writer,
               keyed: KeyedRequest, spaces: Spaces) -> Response:
    await s.check_prompt(ref, spaces)
    if body.space is not None:
        check_new(body.space, spaces)
    else:  # into the original's space: the caller must be able to write there
        await s.check_prompt(ref, spaces, write=True)
    return await keyed.once(s.keys, who.subject, body, lambda: made(
        s.fork(ref, body.name, body.version, who.subject, body.space)))


@router.post("/prompts/{ref}/lint", summary="Lint a stored version")
async def lint_prompt(ref: PromptRef, body: LintIn, s: Store, _: Reader,
                      spaces: Spaces) -> LintOut:
    await s.check_prompt(ref, spaces)
    return await s.lint(ref, body)


@router.post("/prompts/{ref}/bias-check", summary="Word-list (and optional LLM) bias check")
async def bias_check(ref: PromptRef, body: BiasIn, s: Store, _: Reader,
                     spaces: Spaces) -> BiasOut:
    await s.check_prompt(ref, spaces)
    return await s.bias_check(ref, body.version, body.llm)


@router.post("/optimization/prompts/{ref}/optimize", status_code=201,
             response_model=OptimizeOut,
             summary="Ask the llm-gateway for variations, stored as draft versions")
async def optimize(ref: PromptRef, body: OptimizeIn, s: Store, who: Writer,
                   keyed: KeyedRequest, spaces: Spaces) -> Response:
    await s.check_prompt(ref, spaces, write=True)
    return await keyed.once(s.keys, who.subject, body,
                            lambda: made(s.optimize(ref, body, who.subject)))


# --- A/B tests ----------------------------------------------------------------------

@router.post("/abtests", status_code=201, response_model=AbTestOut,
             summary="Start an A/B test between versions")
async def create_test(body: AbTestIn, s: Store, who: Writer, keyed: KeyedRequest,
                      spaces: Spaces) -> Response:
    await s.check_prompt(body.prompt, spaces, write=True)
    return await keyed.once(s.keys, who.subject, body, lambda: made(s.create_test(body)))


@router.get("/abtests", summary="A/B tests, newest first")
async def list_tests(s: Store, _: Reader, spaces: Spaces,
                     prompt: Annotated[StorableText | None, Query(max_length=200)] = None
                     ) -> list[AbTestOut]:
    if prompt is not None:
        await s.check_prompt(prompt, spaces)
    return await s.list_tests(prompt, spaces)


@router.get("/abtests/{test_id}", summary="One A/B test")
async def get_test(test_id: TestId, s: Store, _: Reader, spaces: Spaces) -> AbTestOut:
    await s.check_test(test_id, spaces)
    return await s.get_test(test_id)


@router.get("/abtests/{test_id}/assignment", summary="The variant a subject gets")
async def assignment(test_id: TestId, s: Store, _: Reader, spaces: Spaces,
                     subject: Annotated[StorableText, Query(min_length=1, max_length=200)]
                     ) -> SubjectAssignment:
    await s.check_test(test_id, spaces)
    return SubjectAssignment(test_id=test_id, subject=subject,
                             version=await s.assignment(test_id, subject))


@router.post("/abtests/{test_id}/outcomes", response_model=AbResults,
             summary="Record one call's outcome")
async def record_outcome(test_id: TestId, body: OutcomeIn, s: Store, who: Writer,
                         keyed: KeyedRequest, spaces: Spaces) -> Response:
    await s.check_test(test_id, spaces, write=True)
    return await keyed.once(s.keys, who.subject, body,
                            lambda: made(s.record_outcome(test_id, body), 200))


@router.get("/abtests/{test_id}/results", summary="Per-variant statistics and significance")
async def results(test_id: TestId, s: Store, _: Reader, spaces: Spaces) -> AbResults:
    await s.check_test(test_id, spaces)
    return await s.results(test_id)


@router.post("/abtests/{test_id}/stop", summary="Stop a test, optionally promoting the winner")
async def stop_test(test_id: TestId, s: Store, _: Writer, spaces: Spaces,
                    promote: bool = False) -> AbResults:
    await s.check_test(test_id, spaces, write=True)
    return await s.stop_test(test_id, promote)


# --- analytics ----------------------------------------------------------------------

@router.get("/analytics/prompts/{ref}", summary="Usage per version of a prompt")
async def analytics(ref: PromptRef, s: Store, _: Reader,
                    spaces: Spaces) -> PromptAnalytics:
    await s.check_prompt(ref, spaces)
    return await s.analytics(ref)


