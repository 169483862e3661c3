"""The MCP tools: each an input model (its JSON schema), an output model (its structured
output) and a call to the services as the session's user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from llmdocs.mcp.backend import Backend
from llmdocs.openapi.diff import Diff
from llmdocs.services.analysis.schemas import CheckOut
from llmdocs.services.orchestrator.schemas import FINISHED

DOCUMENT_URI = "llmdocs://documents/{id}"
Progress = Callable[[float, str], Awaitable[None]]
POLL_SECONDS = 0.3  # how often a running generation's steps are read


def document_uri(document_id: str, version: int | None = None) -> str:
    uri = DOCUMENT_URI.format(id=document_id)
    return uri if version is None else f"{uri}/versions/{version}"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


Id = Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$",
           description="A document id, as search_documents answers it.")


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=500, description="Words to look for.")
    limit: int = Field(10, ge=1, le=100, description="At most this many results.")


class Hit(BaseModel):
    document_id: str
    version: int
    title: str
    format: str
    score: float
    snippet: str
    uri: str


class SearchOut(BaseModel):
    query: str
    results: list[Hit]


class GetDocumentIn(_In):
    id: str = Id
    version: int | None = Field(None, ge=1, description="A version; the current if not given.")
    format: Literal["text", "json"] = Field(
        "text", description="text: the content as stored; json: the content with its "
        "metadata, as one JSON text.")


class DocumentOut(BaseModel):
    document_id: str
    version: int
    title: str
    format: str
    media_type: str
    space: str
    tags: list[str]
    stale: bool
    uri: str
    content: str | None = Field(description="None for a binary document.")


class IdIn(_In):
    id: str = Id


class ProvenanceOut(BaseModel):
    document_id: str
    version: int
    content_hash: str
    provenance: dict[str, Any] | None


class ServiceOut(BaseModel):
    name: str
    title: str
    version: str
    operation_count: int
    health: str


class ServicesOut(BaseModel):
    services: list[ServiceOut]


class ServiceIn(_In):
    service: str = Field(min_length=1, max_length=100, description="A registered service.")


class OperationOut(BaseModel):
    operation_id: str
    method: str
    path: str
    summary: str


class OperationsOut(BaseModel):
    service: str
    operations: list[OperationOut]


class OperationIn(ServiceIn):
    operation: str = Field(min_length=1, max_length=200, description="An operation id.")


class OperationDetail(BaseModel):
    service: str
    operation: dict[str, Any] = Field(description="The operation, its $refs resolved.")


class GenerateIn(_In):
    request: str = Field(min_length=1, max_length=4000, description=(
        "What to write, in plain words: 'Create API documentation for the user service'."))
    format: Literal["markdown", "json", "txt", "csv", "pdf", "zip"] = "markdown"
    spec: str | None = Field(None, min_length=1, max_length=2000, description=(
        "The OpenAPI spec to document: a doc-store document id or an http(s) URL; "
        "found from the request if not given."))
    space: str | None = Field(None, min_length=1, max_length=100, description=(
        "The space the run reads its spec from and stores the document in; "
        "default if not given."))


class GenerateOut(BaseModel):
    execution_id: str
    status: str
    document_id: str | None
    format: str | None
    uri: str | None
    download_url: str | None
    provenance_url: str | None
    steps: list[str]


class SpecIn(_In):
    document_id: str | None = Field(None, min_length=1, max_length=36,
                                    pattern=r"^[A-Za-z0-9-]+$")
    url: str | None = Field(None, min_length=1, max_length=2000)
    content: str | None = Field(None, min_length=1, max_length=2_000_000,
                                description="The spec as YAML or JSON text.")

    def ref(self) -> dict[str, Any]:
        given = self.model_dump(exclude_none=True)
        if len(given) != 1:
            raise ValueError("name the spec one way: document_id, url or content")
        return given


class DiffIn(_In):
    base: SpecIn = Field(description="The older spec.")
    head: SpecIn = Field(description="The newer spec.")


class CheckIn(_In):
    id: str = Id
    spec: SpecIn = Field(description="The spec the document should tell the truth about.")


@dataclass(frozen=True)
class Call:
    """One tool call: the backend acting as the caller, and where progress goes."""

    backend: Backend
    progress: Progress


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    takes: type[_In]
    gives: type[BaseModel]
    run: Callable[[Call, Any], Awaitable[BaseModel]]
    read_only: bool = True


async def search_documents(call: Call, args: SearchIn) -> SearchOut:
    page = await call.backend.docs.search(args.query, limit=args.limit)
    return SearchOut(query=args.query, results=[
        Hit(document_id=h.document_id, version=h.version, title=h.title, format=h.format,
            score=h.score, snippet=h.snippet, uri=document_uri(h.document_id))
        for h in page.items])


async def get_document(call: Call, args: GetDocumentIn) -> DocumentOut:
    doc = await call.backend.docs.get(args.id, args.version)
    return DocumentOut(document_id=doc.document_id, version=doc.version, title=doc.title,
                       format=doc.format, media_type=doc.media_type, space=doc.space,
                       tags=doc.tags, stale=doc.stale, content=doc.content,
                       uri=document_uri(doc.document_id, args.version))


async def get_provenance(call: Call, args: IdIn) -> ProvenanceOut:
    found = await call.backend.docs.provenance(args.id)
    return ProvenanceOut(document_id=found.document_id, version=found.version,
                         content_hash=found.content_hash, provenance=found.provenance)


async def list_services(call: Call, _: _In) -> ServicesOut:
    found = await call.backend.orchestrator.list_services()
    return ServicesOut(services=[
        ServiceOut(name=s.name, title=s.title, version=s.version,
                   operation_count=s.operation_count, health=str(s.health.status))
        for s in found])


async def list_operations(call: Call, args: ServiceIn) -> OperationsOut:
    found = await call.backend.orchestrator.get_service(args.service)
    return OperationsOut(service=found.name, operations=[
        OperationOut(operation_id=o.operation_id, method=o.method.upper(), path=o.path,
                     summary=o.summary) for o in found.operations])


async def describe_operation(call: Call, args: OperationIn) -> OperationDetail:
    found = await call.backend.orchestrator.get_service(args.service)
    for operation in found.operations:
        if operation.operation_id == args.operation:
            return OperationDetail(service=found.name,
                                   operation=operation.model_dump(mode="json"))
    raise LookupError(f"{args.service} has no operation {args.operation!r}: "
                      "list_operations names them")


def _spec_fields(spec: str | None) -> dict[str, str]:
    if spec is None:
        return {}
    if spec.startswith(("http://", "https://")):
        return {"spec_url": spec}
    return {"spec_document_id": spec}


async def generate_documentation(call: Call, args: GenerateIn) -> GenerateOut:
    """Start the run, report each step as it ends, and cancel the run when the MCP
    request is cancelled."""
    interpreter = call.backend.interpreter
    execution = await interpreter.execute(args.request, format=args.format, run_async=True,
                                          space=args.space, **_spec_fields(args.spec))
    reported = 0
    try:
        while True:
            for step in execution.steps[reported:]:
                reported += 1
                await call.progress(reported, f"{step.get('name')}: {step.get('status')}")
            if execution.status in FINISHED:
                break
            await anyio.sleep(POLL_SECONDS)
            execution = await interpreter.execution(execution.execution_id)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await interpreter.cancel(execution.execution_id)
        raise
    if execution.status != "completed":
        raise RuntimeError(f"the run {execution.status}: {execution.error or 'no document'}")
    return GenerateOut(
        execution_id=execution.execution_id, status=execution.status,
        document_id=execution.document_id, format=execution.format,
        uri=document_uri(execution.document_id) if execution.document_id else None,
        download_url=execution.download_url, provenance_url=execution.provenance_url,
        steps=[str(s.get("name")) for s in execution.steps])


async def diff_specs(call: Call, args: DiffIn) -> Diff:
    return await call.backend.analysis.diff(args.base.ref(), args.head.ref())


async def check_document(call: Call, args: CheckIn) -> CheckOut:
    return await call.backend.analysis.check({"document_id": args.id}, args.spec.ref())


TOOLS = {tool.name: tool for tool in (
    ToolDef("search_documents", "Search the documents you may read, best match first; "
            "each result names its resource URI.", SearchIn, SearchOut, search_documents),
    ToolDef("get_document", "One document (a version of it, if given) with its content.",
            GetDocumentIn, DocumentOut, get_document),
    ToolDef("get_provenance", "Where a document came from: sources with their versions "
            "and hashes, prompts, model calls and steps.", IdIn, ProvenanceOut,
            get_provenance),
    ToolDef("list_services", "The services registered with llmdocs and their health.",
            _In, ServicesOut, list_services),
    ToolDef("list_operations", "The operations of a registered service (from its OpenAPI "
            "spec).", ServiceIn, OperationsOut, list_operations),
    ToolDef("describe_operation", "One operation of a registered service in full: "
            "parameters, request body, responses, scopes.", OperationIn, OperationDetail,
            describe_operation),
    ToolDef("generate_documentation", "Write a document from a plain-language request "
            "(e.g. API documentation of a service from its OpenAPI spec) and store it; "
            "reports each workflow step as progress; cancellable.", GenerateIn,
            GenerateOut, generate_documentation, read_only=False),
    ToolDef("diff_specs", "What changed between two OpenAPI specs, and which changes break "
            "clients.", DiffIn, Diff, diff_specs),
    ToolDef("check_document", "What a stored Markdown document claims that a spec does not "
            "support, and the operations it misses.", CheckIn, CheckOut, check_document),
)}
