"""Every doc-store and prompt-store route that names something by id, called by a member
of another space: a 404, and nothing of the other space's document or prompt in the
answer. Routes come from each service's OpenAPI document, so a new route is in the
matrix without a change here — but for the body it needs, which `BODIES` must give."""

from __future__ import annotations

import re
from typing import Any, cast

import httpx

from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

SECRET = "zebracorn"  # in the hidden document and prompt; in no route's own words
# the smallest valid body of each route that needs one ({id}: the route's own path)
BODIES: dict[tuple[str, str], Any] = {
    ("put", "/documents/{document_id}"): {"content": "x"},
    ("patch", "/documents/{document_id}"): {"tags": ["x"]},
    ("post", "/documents/{document_id}/rollback"): {"version": 1},
    ("post", "/documents/{document_id}/stale"): {"reason": "r", "finding_id": "f"},
    ("post", "/documents/{document_id}/relations"): {"type": "references",
                                                     "target_id": "{document_id}"},
    ("put", "/spaces/{name}/members/{subject}"): {"role": "admin"},
    ("patch", "/api/v1/prompts/{ref}"): {"description": "x"},
    ("post", "/api/v1/prompts/{ref}/versions"): {"content": "x"},
    ("put", "/api/v1/prompts/{ref}/versions/{version}/state"): {"state": "deprecated"},
    ("post", "/api/v1/prompts/{ref}/render"): {"variables": {"team": "b"}},
    ("post", "/api/v1/prompts/by-name/{name}/render"): {"variables": {"team": "b"}},
    ("put", "/api/v1/prompts/{ref}/labels/{label}"): {"version": 1},
    ("post", "/api/v1/prompts/{ref}/rollback"): {"label": "production"},
    ("post", "/api/v1/prompts/{ref}/fork"): {"name": "stolen"},
    ("post", "/api/v1/prompts/{ref}/lint"): {},
    ("post", "/api/v1/prompts/{ref}/bias-check"): {},
    ("post", "/api/v1/optimization/prompts/{ref}/optimize"): {"optimization_type": "brevity"},
    ("post", "/api/v1/abtests/{test_id}/outcomes"): {"version": 1, "success": True},
}
QUERIES = {"/documents/{document_id}/diff": {"from": 1, "to": 1},
           "/api/v1/prompts/{ref}/diff": {"from": 1, "to": 2},
           "/api/v1/abtests/{test_id}/assignment": {"subject": "s"}}


async def hidden_things(settings: Settings, docs: str, prompts: str) -> dict[str, Any]:
    """A space `team-a`, alice its editor, and in it her document, prompt and A/B test;
    the path parameters that name them."""
    def client(base: str, subject: str, *scopes: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, timeout=30, headers={
            "Authorization": f"Bearer {issue_token(settings, subject, scopes)}"})

    async with client(docs, "user:root", "*") as root, \
            client(docs, "user:alice", "docs:read", "docs:write") as alice_docs, \
            client(prompts, "user:alice", "prompts:read", "prompts:write") as alice:
        await root.post("/spaces", json={"name": "team-a"})
        await root.put("/spaces/team-a/members/user:alice", json={"role": "editor"})
        doc = await alice_docs.post("/documents", json={
            "content": f"# {SECRET} plans", "space": "team-a"})
        assert doc.status_code == 201, doc.text
        made = await alice.post("/api/v1/prompts", json={
            "name": "plans", "content": f"{SECRET} for {{{{ team }}}}", "space": "team-a"})
        assert made.status_code == 201, made.text
        await alice.post("/api/v1/prompts/plans/versions", json={"content": f"{SECRET} 2"})
        test = await alice.post("/api/v1/abtests", json={
            "prompt": "plans", "name": "t", "variants": [{"version": 1, "weight": 0.5},
                                                         {"version": 2, "weight": 0.5}]})
        assert test.status_code == 201, test.text
    return {"document_id": doc.json()["document_id"], "target_id": doc.json()["document_id"],
            "version": "1", "type": "references", "ref": "plans", "test_id": test.json()["id"],
            "label": "production", "subject": "user:bob", "prompt_name": "plans",
            "space_name": "team-a"}


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], template)


async def test_a_member_of_another_space_gets_404s_and_no_content(
        settings: Settings, serve: Any) -> None:
    settings.http_retries = 1
    docs = (await serve(create_app("docstore", settings))).url
    settings.docstore_url = docs
    prompts = (await serve(create_app("promptstore", settings))).url
    names = await hidden_things(settings, docs, prompts)
    token = issue_token(settings, "user:bob", ["docs:read", "docs:write", "prompts:read",
                                               "prompts:write"])
    wrong: list[str] = []
    checked = 0
    for base in (docs, prompts):
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as bob:
            paths = (await bob.get("/openapi.json")).json()["paths"]
            for template, operations in paths.items():
                # a privacy request is about a person, not a space's record: it is
                # refused (403) to anyone without privacy:admin, a member or not
                if "{" not in template or template.startswith("/privacy/"):
                    continue
                own = dict(names, name=names["space_name" if template.startswith("/spaces")
                                             else "prompt_name"])
                path = fill(template, own)
                for method in operations:
                    body = BODIES.get((method, template))
                    if body is not None:
                        body = {k: own.get(v.strip("{}"), v) if isinstance(v, str)
                                and v.startswith("{") else v for k, v in body.items()}
                    answer = await bob.request(method.upper(), path, json=body,
                                               params=cast(Any, QUERIES.get(template)))
                    checked += 1
                    if answer.status_code != 404 or SECRET in answer.text:
                        wrong.append(f"{method.upper()} {template}: {answer.status_code} "
                                     f"{answer.text[:200]}")
    assert checked >= 40  # both services' routes by id, every method
    assert not wrong, "\n".join(wrong)
