"""The interpreter refuses bad input cleanly and acts only for its caller: who a request
is for comes from the token, sessions and executions are their owner's, every refusal
comes before a run starts, NUL and malformed ids or URLs are a 422, another service's
refusal keeps its meaning, download names reach the header safely, and `llmdocs ask`
says why it was refused. Real services over HTTP; the model is the local fake speaking
the OpenAI wire format (tests/services/orchestrator/fakellm.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ecosystem import start_services, store_spec, token
from llmdocs.cli import app
from llmdocs.core.auth import issue_token
from llmdocs.core.client import (
    BadRequest,
    Forbidden,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
    Unprocessable,
    UpstreamError,
)
from llmdocs.core.config import Settings
from llmdocs.services.docstore.client import DocStoreClient
from llmdocs.services.interpreter.api import _problem
from llmdocs.services.orchestrator.client import OrchestratorClient
from services.orchestrator.fakellm import fake_llm, provider_env

QUERY = "Create API documentation for user service"
PEOPLE = ("queries:read", "queries:write", "docs:read")  # a user's token, no admin


async def fake_eco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch,
                   latency: float = 0.0) -> Settings:
    fake = await serve(fake_llm(latency))
    for key, value in provider_env(fake.url).items():
        monkeypatch.setenv(key, value)
    return await start_services(settings, serve)


@pytest.fixture
async def ieco(settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ecosystem with the example spec stored and an instant fake model."""
    eco = await fake_eco(settings, serve, monkeypatch)
    await store_spec(eco)
    return eco


def as_user(settings: Settings, subject: str, *scopes: str) -> httpx.AsyncClient:
    bearer = issue_token(settings, subject, list(scopes) or list(PEOPLE))
    return httpx.AsyncClient(base_url=settings.url_for("interpreter"), timeout=120,
                             headers={"Authorization": f"Bearer {bearer}"})


async def run_ids(settings: Settings) -> set[str]:
    async with OrchestratorClient.for_service(settings, token=token(settings)) as orch:
        return {run.id for run in (await orch.runs(limit=200)).items}


async def test_the_user_is_the_caller_and_owns_what_it_started(ieco: Settings) -> None:
    async with as_user(ieco, "user:alice") as alice, as_user(ieco, "user:bob") as bob, \
            as_user(ieco, "user:u1", "*") as admin:
        first = await alice.post("/execute-query", json={"query": QUERY, "session_id": "sa"})
        assert first.status_code == 200, first.text
        mine = first.json()
        provenance = (await alice.get(mine["provenance_url"])).json()
        assert provenance["user_context"]["user_id"] == "user:alice"  # from the token
        same = await alice.post("/interpret", json={"query": QUERY, "user_id": "user:alice"})
        assert same.status_code == 200  # naming oneself is fine
        before = await run_ids(ieco)

        other = await alice.post("/execute-query", json={"query": QUERY, "user_id": "bob"})
        assert other.status_code == 403
        assert "may not act for user 'bob'" in other.json()["detail"]
        execution = f"/executions/{mine['execution_id']}"
        for refused in (
                await bob.get(execution), await bob.get(f"{execution}/events"),
                await bob.post(f"{execution}/cancel"),
                await bob.post("/interpret", json={"query": "now as PDF", "session_id": "sa"}),
                await bob.post("/execute-query", json={"query": "now as PDF",
                                                       "session_id": "sa"}),
                await bob.post("/execute-query", json={"query": QUERY, "session_id": "sa"})):
            assert refused.status_code == 403, refused.text
            assert "belongs to another user" in refused.json()["detail"]
        assert await run_ids(ieco) == before  # nothing started for a refused request

        assert (await admin.get(execution)).json()["status"] == "completed"
        for_alice = await admin.post("/interpret", json={
            "query": "now as PDF", "session_id": "sa", "user_id": "user:alice"})
        assert for_alice.json()["follow_up"] is True  # an admin acts for her
        follow = await alice.post("/execute-query", json={"query": "now as PDF",
                                                          "session_id": "sa"})
        assert follow.status_code == 200 and follow.json()["format"] == "pdf"


async def test_bad_input_is_refused_before_anything_runs(ieco: Settings) -> None:
    nul = "a\x00b"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"query": f"{QUERY} {nul}"}, "body.query"),
        ({"query": QUERY, "user_id": nul}, "body.user_id"),
        ({"query": QUERY, "session_id": nul}, "body.session_id"),
        ({"query": QUERY, "spec_document_id": nul}, "body.spec_document_id"),
        ({"query": QUERY, "spec_document_id": "../x"}, "body.spec_document_id"),
        ({"query": QUERY, "document_ids": ["ok", nul]}, "body.document_ids.1"),
        *(({"query": "Create API documentation", "spec_url": url}, "body.spec_url")
          for url in ("file:///etc/passwd", "ftp://example.com/spec.yaml", "not a url",
                      "http://[::1", f"http://example.com/{nul}")),
        ({"query": QUERY, "format": "pdf", "output_format": "csv"}, "body"),
        ({"query": QUERY, "async": "yes"}, "body.async"),
    ]
    async with as_user(ieco, "user:u1", "*") as http:
        for body, field in cases:
            for path in ("/interpret", "/execute-query"):
                answer = await http.post(path, json=body)
                assert answer.status_code == 422, (body, answer.text)
                assert field in [e["field"] for e in answer.json()["errors"]], answer.text
        both = await http.post("/execute-query", json={"query": QUERY, "session_id": "s",
                                                       "format": "pdf", "output_format": "csv"})
        assert "give format or output_format, not both" in both.text
        assert await run_ids(ieco) == set()
        agree = await http.post("/interpret", json={"query": QUERY, "format": "MD",
                                                    "output_format": "markdown"})
        assert agree.status_code == 200 and agree.json()["workflow_input"]["format"] == (
            "markdown")

        for session in (None, "new-session"):  # a follow-up with nothing to follow
            for query in ("now as PDF", "add the error codes"):
                body = {"query": query} | ({"session_id": session} if session else {})
                plan = (await http.post("/interpret", json=body)).json()
                assert plan["follow_up"] and "no previous result in this session" in (
                    plan["missing"][0])
                refused = await http.post("/execute-query", json=body)
                assert refused.status_code == 422
                assert "no previous result in this session" in refused.json()["detail"]
        huge = await http.post("/execute-query", json={"query": "x" * 2_000_000})
        assert huge.status_code == 413 and "limit" in huge.json()["detail"]
        assert await run_ids(ieco) == set()


async def test_listings_are_executions_and_upstream_refusals_keep_their_meaning(
        ieco: Settings) -> None:
    async with as_user(ieco, "user:alice") as alice, as_user(ieco, "user:bob") as bob:
        listed = await alice.post("/execute-query", json={"query": "list documents"})
        assert listed.status_code == 200 and listed.json()["documents"]
        again = await alice.get(f"/executions/{listed.json()['execution_id']}")
        assert again.status_code == 200 and again.json() == listed.json()
        assert (await bob.get(f"/executions/{listed.json()['execution_id']}")
                ).status_code == 403
        later = await alice.post("/execute-query", json={"query": "find user service",
                                                         "async": True})
        assert later.status_code == 202 and later.json()["documents"]
        followed = await alice.get(later.headers["location"])
        assert followed.json()["status"] == "completed" and followed.json()["documents"]
        cancel = await alice.post(f"{later.headers['location']}/cancel")
        assert cancel.status_code == 409 and "nothing to cancel" in cancel.json()["detail"]
        formatted = await alice.post("/execute-query", json={"query": "list documents",
                                                             "format": "pdf"})
        assert formatted.status_code == 422
        assert "format does not apply" in formatted.json()["detail"]

        for query in ("search documents for *", "search documents for ^^^ :: {}"):
            nothing = await alice.post("/execute-query", json={"query": query})
            assert nothing.status_code == 422, nothing.text  # the doc-store's 400
            assert "no words to search for" in nothing.json()["detail"]


@pytest.mark.parametrize(("error", "sent", "status"), [
    (BadRequest, 400, 422), (Unprocessable, 422, 422), (Forbidden, 403, 403),
    (RateLimited, 429, 429), (UpstreamError, 500, 503), (UpstreamError, 504, 504),
    (ServiceUnavailable, 503, 503), (ServiceUnavailable, 504, 504)])
def test_a_called_services_answer_keeps_its_meaning(error: type[ServiceError], sent: int,
                                                    status: int) -> None:
    problem = _problem(error("docstore", sent, {"detail": "because"}, "7"))
    assert problem.status == status and "because" in problem.detail
    # a limit's or an outage's own wait is passed on: the client may retry then
    retry = status in (429, 503, 504)
    assert (problem.headers or {}).get("Retry-After") == ("7" if retry else None)
    if retry:
        unsaid = _problem(error("docstore", sent, {"detail": "because"}))
        assert status == 429 or int(unsaid.headers["Retry-After"]) > 0


async def test_download_names_reach_the_header_safely(ieco: Settings) -> None:
    names: list[tuple[Any, str, str]] = [
        ("naïve 😀.md", 'filename="naive .md"', "filename*=UTF-8''na%C3%AFve%20%F0%9F%98%80.md"),
        ("a\r\nSet-Cookie: x=1.md", 'filename="a__Set-Cookie: x=1.md"',
         "filename*=UTF-8''a__Set-Cookie%3A%20x%3D1.md"),
        ('a"b.md', 'filename="a_b.md"', "filename*=UTF-8''a%22b.md"),
        ("../../etc/passwd", 'filename=".._.._etc_passwd"', "UTF-8''.._.._etc_passwd"),
        # bidirectional and zero-width characters would show another name
        ("invoice\u202etxt.exe", 'filename="invoice_txt.exe"', "UTF-8''invoice_txt.exe"),
        ("pay\u200bpal\u2066.pdf", 'filename="pay_pal_.pdf"', "UTF-8''pay_pal_.pdf"),
        (["a"], "filename=", ""), (7, "filename=", ""),
    ]
    async with DocStoreClient.for_service(ieco, token=token(ieco)) as docs, \
            as_user(ieco, "user:u1", "*") as http:
        for name, fallback, encoded in names:
            stored = await docs.put(f"# {name!r}", title="Named", format="markdown",
                                    metadata={"filename": name})
            path = f"/documents/{stored.document_id}/download"
            answer = await http.get(path)
            assert answer.status_code == 200, (name, answer.text)
            header = answer.headers["content-disposition"]
            assert header.startswith("attachment; ") and fallback in header, header
            assert encoded in header and "\r" not in header and "\n" not in header
            if not isinstance(name, str):  # the doc-store's own name
                assert "['a']" not in header and '"7"' not in header
            head = await http.head(path)
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-disposition"] == header
        generated = await http.post("/execute-query", json={"query": QUERY})
        provenance = generated.json()["provenance_url"]
        assert (await http.head(provenance)).status_code == 200
        assert (await http.head(generated.json()["download_url"])).status_code == 200


async def test_a_cancelled_synchronous_request_is_a_conflict(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = await fake_eco(settings, serve, monkeypatch, latency=1.0)
    await store_spec(eco)
    async with as_user(eco, "user:u1", "*") as http, \
            OrchestratorClient.for_service(eco, token=token(eco)) as orch:
        waiting = asyncio.create_task(http.post("/execute-query", json={"query": QUERY}))
        running: list[Any] = []
        while not running:
            await asyncio.sleep(0.1)
            running = (await orch.runs(status="running")).items
        await orch.cancel_run(running[0].id)
        answer = await waiting
    assert answer.status_code == 409, answer.text
    execution_id = answer.json()["errors"][0]["execution_id"]
    assert f"execution {execution_id} was cancelled" in answer.json()["detail"]


async def test_ask_says_why_and_checks_the_output_first(
        ieco: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_INTERPRETER_URL", ieco.url_for("interpreter"))
    monkeypatch.setenv("LLMDOCS_TOKEN", issue_token(ieco, "user:carol", PEOPLE))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    async def ask(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, app, ["ask", *args])

    nowhere = await ask(QUERY, "-o", str(tmp_path / "missing" / "out.md"))
    assert nowhere.exit_code == 1 and "no directory" in nowhere.output
    assert "Traceback" not in nowhere.output
    folder = await ask(QUERY, "-o", str(tmp_path))
    assert folder.exit_code == 1 and "is a directory" in folder.output
    docx = await ask(QUERY, "--format", "docx")
    assert docx.exit_code == 1 and "unknown format 'docx'" in docx.output
    blank = await ask("   ")
    assert blank.exit_code == 1 and "the query is empty" in blank.output
    assert await run_ids(ieco) == set()  # none of them ran
    saved = await ask(QUERY, "-o", str(tmp_path / "out.md"))
    assert saved.exit_code == 0, saved.output
    async with OrchestratorClient.for_service(ieco, token=token(ieco)) as orch:
        runs = (await orch.runs()).items
    assert [run.user_id for run in runs] == ["user:carol"]  # the token says who
    assert (tmp_path / "out.md").read_text().startswith("#")


async def test_concurrent_first_requests_of_a_session_on_postgresql(
        settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    eco = await fake_eco(settings.model_copy(update={"database_url": pg_url}), serve,
                         monkeypatch)
    body = {"query": QUERY, "session_id": "shared", "async": True,
            "spec_document_id": "0190aaaa-0000-7000-8000-000000000000"}  # fails at once
    async with as_user(eco, "user:u1", "*") as http:
        answers = await asyncio.gather(*(http.post("/execute-query", json=body)
                                          for _ in range(6)))
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
        async with as_user(eco, "user:bob") as bob:
            taken = await bob.post("/execute-query", json=body)
        assert taken.status_code == 403
    assert len(await run_ids(eco)) == 6
