"""Every route of every service against every kind of bad token: none, llmdocs' own
expired or for another audience, the identity provider's expired or for another
audience, another issuer's, `alg: none`, HS/RS confusion (the provider's public key as
an HMAC secret) — each a 401 problem — and a role without the route's scope, a 403
problem. Routes come from each service's own OpenAPI document, so a new route is in
the matrix without a change here; the public ones (health, metrics, docs) are left out.
The column "a member of another space" (the 404 a missing id gets, none of the thing's
text) needs each service's things made first: test_spaces_matrix.py (doc-store,
prompt-store), test_spaces_services.py's `every_route_by_id` (interpreter, orchestrator,
analysis) and services/notification/test_spaces.py (notification, by owner)."""

from __future__ import annotations

import re
import time
from typing import Any, cast

import httpx
import jwt
import pytest

from idp import AUDIENCE, IdentityProvider
from llmdocs.core.app import PUBLIC_PATHS
from llmdocs.core.auth import issue_token
from llmdocs.core.config import SERVICE_NAMES, Settings
from llmdocs.services import create_app

# a configured role whose one scope no route asks for
STRANGER = {"stranger": ["elsewhere:read"]}


def bad_tokens(settings: Settings, idp: IdentityProvider) -> dict[str, str | None]:
    """What each route must refuse with a 401, by name."""
    now = int(time.time())
    other = IdentityProvider()  # never served: its tokens are refused before any fetch
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
              "roles": ["admin"]}
    return {
        "no token": None,
        "llmdocs expired": jwt.encode({"sub": "user:m", "scopes": ["*"], "iss": "llmdocs",
                                       "aud": settings.jwt_audience, "exp": now - 60},
                                      settings.signing_key),
        "llmdocs wrong audience": issue_token(settings.model_copy(update={
            "jwt_audience": "elsewhere"}), "user:m", ["*"]),
        "provider expired": idp.sign("mallory", exp=now - 60, iat=now - 400,
                                     roles=["admin"]),
        "provider wrong audience": idp.sign("mallory", aud="another-app", roles=["admin"]),
        "other issuer": other.sign("mallory", roles=["admin"]),
        "alg none": jwt.encode(claims, cast(Any, None), algorithm="none"),
        "HS/RS confusion": idp.confused(claims),
    }


def lacking_role(idp: IdentityProvider, settings: Settings, scopes: list[str]
                 ) -> dict[str, str]:
    """Tokens (the provider's and llmdocs' own) whose role lacks the route's scopes: a
    viewer where a write or admin scope is needed, a stranger where only reading is."""
    role = "stranger" if all(s.endswith(":read") for s in scopes) else "viewer"
    return {f"provider {role}": idp.sign("rita", roles=[role]),
            f"llmdocs {role}": issue_token(settings, "user:rita", [], roles=[role])}


@pytest.mark.parametrize("key", SERVICE_NAMES)
async def test_every_route_refuses_every_bad_token(key: str, settings: Settings,
                                                   serve: Any) -> None:
    idp = IdentityProvider()
    await serve(idp.app(), port=idp.port)
    configured = settings.model_copy(update={"oidc_issuer": idp.issuer,
                                             "oidc_audience": AUDIENCE, "roles": STRANGER})
    running = await serve(create_app(key, configured))
    bad = bad_tokens(configured, idp)
    wrong: list[str] = []
    checked = 0
    async with httpx.AsyncClient(base_url=running.url) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
        for path, operations in paths.items():
            if path in PUBLIC_PATHS:
                continue
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            for method, operation in operations.items():
                scopes: list[str] = operation["security"][0]["bearer"]
                cases = [(name, token, 401) for name, token in bad.items()]
                if scopes:
                    cases += [(name, token, 403) for name, token
                              in lacking_role(idp, configured, scopes).items()]
                for name, token, status in cases:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    answer = await http.request(method.upper(), concrete, headers=headers)
                    checked += 1
                    problem = answer.headers.get("content-type", "").startswith(
                        "application/problem+json")
                    if answer.status_code != status or not problem:
                        wrong.append(f"{method.upper()} {path} {name}: "
                                     f"{answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert "/info" in paths and checked >= len(bad)
