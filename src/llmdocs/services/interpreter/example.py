"""The worked example: API documentation of the shipped user-service spec, generated
by the running ecosystem as its first act (`llmdocs up --example`)."""

from __future__ import annotations

from llmdocs.cli_support import console
from llmdocs.core.auth import issue_token
from llmdocs.core.client import ServiceError
from llmdocs.core.config import Settings
from llmdocs.examples import user_service_spec
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.interpreter.client import InterpreterClient
from llmdocs.services.interpreter.schemas import ExecutionOut

QUERY = "Create API documentation for user service"


def summary_lines(execution: ExecutionOut) -> list[str]:
    """A few lines of provenance a person can read at a glance."""
    p = execution.provenance or {}
    run, quality = p.get("workflow_execution", {}), p.get("quality_metrics", {})
    calls = p.get("llm_calls", [])
    models = sorted({f"{c['provider']}/{c['model']}" for c in calls})
    tokens = sum(c["tokens"]["prompt"] + c["tokens"]["completion"] for c in calls)
    spec = (p.get("data_lineage") or {}).get("spec") or {}
    prompts = ", ".join(f"{x['name']} v{x['version']}" for x in p.get("prompts_used", []))
    return [
        f"workflow  {run.get('workflow')} v{run.get('version')}, run {run.get('execution_id')}"
        f", {len(run.get('steps', []))} steps",
        f"services  {' → '.join(p.get('services_chain', []))}",
        f"prompts   {prompts}",
        f"model     {len(calls)} calls to {', '.join(models)}, {tokens} tokens",
        f"source    {spec.get('title')} {spec.get('version')} "
        + (f"(sha256 {spec['sha256'][:12]}…)" if spec.get("sha256") else
           f"(canonical sha256 {str(spec.get('canonical_sha256'))[:12]}…)"),
        f"quality   {'approved' if quality.get('approved') else 'NOT approved'}: "
        f"completeness {quality.get('completeness')}, truthfulness "
        f"{quality.get('truthfulness')}, prose kept {quality.get('prose_acceptance')}, "
        f"judge {(quality.get('judgement') or {}).get('status')}, "
        f"{quality.get('revision_rounds')} revision rounds",
    ]


async def run_example(settings: Settings) -> ExecutionOut | None:
    """Store the example spec (once), ask for its documentation, print where it is, set
    apart from the logs around it."""
    token = issue_token(settings, "user:example", ["*"], ttl_seconds=3600)
    try:
        async with DocStoreClient.for_service(settings, token=token) as docs:
            spec = await docs.put(user_service_spec(), title="User Service OpenAPI",
                                  format="yaml", tags=["openapi", "example"],
                                  metadata={"service": "user-service"})
        console.rule("[bold]Worked example[/bold]")
        console.print(f"{QUERY!r} for the stored spec {spec.document_id}: the local model "
                      "writes it, which takes minutes on a CPU…", markup=False)
        async with InterpreterClient.for_service(settings.waiting_up_to(900.0),
                                                   token=token) as interpreter:
            execution = await interpreter.execute(QUERY, format="markdown")
    except ServiceError as exc:
        console.rule("[bold red]The worked example failed[/bold red]", style="red")
        console.print(str(exc), soft_wrap=True, markup=False, highlight=False)
        return None
    console.rule("[bold green]Worked example: done[/bold green]", style="green")
    # soft-wrapped: a URL cut by the console's own wrapping would not open
    for line in [f"document   {execution.document_id} ({execution.filename})",
                 f"download   {execution.download_url}",
                 f"provenance {execution.provenance_url}", *summary_lines(execution)]:
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.rule(style="green")
    return execution
