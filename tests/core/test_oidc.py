"""Sign-in through an identity provider: a local one speaking the real protocol
(tests/idp.py: discovery, JWKS, client-credentials token endpoint) in front of a real
service over HTTP. Its RS256 and ES256 tokens are accepted with their roles mapped;
forged, confused, expired, misdirected and foreign tokens are a 401 problem; keys rotate
with a refetch at most once per interval; an unreachable provider is a 503."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import jwt
import pytest

from idp import AUDIENCE, Client, IdentityProvider
from llmdocs.core.auth import issue_token
from llmdocs.core.config import Settings
from llmdocs.services import create_app

INFO = "/info"  # the prompt-store's: needs prompts:read


def oidc_settings(settings: Settings, idp: IdentityProvider, **changes: Any) -> Settings:
    return settings.model_copy(update={"oidc_issuer": idp.issuer, "oidc_audience": AUDIENCE,
                                       **changes})


async def service(serve: Any, settings: Settings) -> httpx.AsyncClient:
    running = await serve(create_app("promptstore", settings))
    return httpx.AsyncClient(base_url=running.url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def idp(serve: Any) -> IdentityProvider:
    provider = IdentityProvider()
    provider.handle = await serve(provider.app(), port=provider.port)  # type: ignore[attr-defined]
    return provider


@pytest.fixture
async def http(idp: IdentityProvider, settings: Settings, serve: Any
               ) -> AsyncIterator[httpx.AsyncClient]:
    async with await service(serve, oidc_settings(settings, idp,
                                                  oidc_jwks_refresh_seconds=0)) as client:
        yield client


def refused(answer: httpx.Response, status: int = 401) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    detail: str = answer.json()["detail"]
    return detail


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_providers_token_is_accepted_with_its_roles(
        alg: str, idp: IdentityProvider, http: httpx.AsyncClient, settings: Settings) -> None:
    idp.add_key(alg)
    idp.clients["ci-job"] = Client("s3cret", {"roles": ["viewer", "offline_access"]})
    async with httpx.AsyncClient() as plain:
        issued = await plain.post(f"{idp.issuer}/protocol/token", data={
            "grant_type": "client_credentials", "client_id": "ci-job",
            "client_secret": "s3cret"})
    token = issued.json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == alg
    info = await http.get(INFO, headers=bearer(token))
    assert info.status_code == 200, info.text
    assert info.json()["caller"] == "oidc:ci-job"  # namespaced apart from llmdocs' own
    no_roles = await http.get(INFO, headers=bearer(idp.sign("bob", roles=["offline_access"])))
    assert "prompts:read" in refused(no_roles, 403)
    # a provider whose clock is a little ahead of ours: its iat is in our future
    ahead = idp.sign("bob", iat=int(time.time()) + 10, roles=["viewer"])
    assert (await http.get(INFO, headers=bearer(ahead))).status_code == 200
    # llmdocs' own tokens keep working beside the provider's
    own = issue_token(settings, "user:ann", ["prompts:read"])
    assert (await http.get(INFO, headers=bearer(own))).status_code == 200


async def test_roles_come_from_the_configured_claim_through_the_map(
        idp: IdentityProvider, settings: Settings, serve: Any) -> None:
    configured = oidc_settings(settings, idp, oidc_roles_claim="realm_access.roles",
                               oidc_role_map={"docs-readers": "viewer"})
    async with await service(serve, configured) as http:
        mapped = idp.sign("carol", realm_access={"roles": ["docs-readers", "admin"]})
        assert (await http.get(INFO, headers=bearer(mapped))).status_code == 200
        # with a map, only mapped names count: the provider's "admin" grants nothing
        unmapped = idp.sign("dave", realm_access={"roles": ["admin"]}, roles=["admin"])
        refused(await http.get(INFO, headers=bearer(unmapped)), 403)


def forged(idp: IdentityProvider, other: IdentityProvider) -> dict[str, str]:
    """Tokens the service must refuse, by what is wrong with them."""
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
              "roles": ["admin"]}
    return {
        "alg none": jwt.encode(claims, cast(Any, None), algorithm="none"),
        "HS/RS confusion": idp.confused(claims),
        "expired": idp.sign("mallory", exp=now - 60, iat=now - 400, roles=["admin"]),
        "wrong aud": idp.sign("mallory", aud="another-app", roles=["admin"]),
        "wrong iss": idp.sign("mallory", iss=idp.issuer + "x", roles=["admin"]),
        "other issuer": other.sign("mallory", roles=["admin"]),
        # another provider's key under our provider's name and a kid it does not publish
        "foreign key": other.sign("mallory", iss=idp.issuer, roles=["admin"]),
    }


async def test_forged_confused_expired_and_foreign_tokens_are_refused(
        idp: IdentityProvider, http: httpx.AsyncClient, serve: Any) -> None:
    other = IdentityProvider()
    await serve(other.app(), port=other.port)
    said = {
        "alg none": "not signed with HS256", "HS/RS confusion": "signed with another key",
        "expired": "has expired", "wrong aud": "another audience",
        "wrong iss": "another issuer", "other issuer": "another issuer",
        "foreign key": "does not publish",
    }
    for case, token in forged(idp, other).items():
        answer = await http.get(INFO, headers=bearer(token))
        assert said[case] in refused(answer), case
        assert answer.headers["www-authenticate"].startswith("Bearer"), case
    assert other.jwks_hits == other.discovery_hits == 0  # never asked for its keys


async def test_a_rotated_key_is_fetched_and_a_dropped_one_stops_working(
        idp: IdentityProvider, http: httpx.AsyncClient) -> None:
    first = idp.current
    assert (await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))).status_code == 200
    assert idp.jwks_hits == 1 and idp.discovery_hits == 1
    second = idp.add_key("ES256")
    assert (await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))).status_code == 200
    assert idp.jwks_hits == 2 and idp.discovery_hits == 1  # the JWKS URL is kept
    # the old key signs until the provider drops it and a new kid makes us refetch
    old = idp.sign(kid=first, roles=["viewer"])
    assert (await http.get(INFO, headers=bearer(old))).status_code == 200
    idp.drop_key(first)
    idp.add_key("RS256")
    assert (await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))).status_code == 200
    dropped = await http.get(INFO, headers=bearer(old))
    assert "does not publish" in refused(dropped)
    assert (await http.get(INFO, headers=bearer(idp.sign(kid=second, roles=["viewer"])))
            ).status_code == 200


async def test_unknown_kids_refetch_the_keys_at_most_once_per_interval(
        idp: IdentityProvider, settings: Settings, serve: Any) -> None:
    async with await service(serve, oidc_settings(settings, idp)) as http:  # 60 s
        assert (await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))
                ).status_code == 200
        idp.add_key("RS256")
        for _ in range(5):
            answer = await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))
            assert "does not publish" in refused(answer)
        assert idp.jwks_hits == 1


async def test_an_unreachable_provider_is_a_503_and_cached_keys_keep_working(
        idp: IdentityProvider, http: httpx.AsyncClient) -> None:
    assert (await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))).status_code == 200
    cached = idp.current
    await idp.handle.stop()  # type: ignore[attr-defined]
    again = await http.get(INFO, headers=bearer(idp.sign(kid=cached, roles=["viewer"])))
    assert again.status_code == 200, again.text
    idp.add_key("ES256")
    outage = await http.get(INFO, headers=bearer(idp.sign(roles=["viewer"])))
    assert "could not be reached" in refused(outage, 503)
    assert int(outage.headers["retry-after"]) >= 1


async def test_an_unreachable_provider_is_asked_again_only_after_the_interval(
        settings: Settings, serve: Any) -> None:
    down = IdentityProvider()  # never served: its port refuses connections
    async with await service(serve, oidc_settings(settings, down)) as http:
        for _ in range(2):
            outage = await http.get(INFO, headers=bearer(down.sign(roles=["viewer"])))
            refused(outage, 503)
            assert 1 <= int(outage.headers["retry-after"]) <= 60


def test_an_issuer_without_an_audience_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMDOCS_OIDC_ISSUER", "https://sso.example.com/realms/x")
    with pytest.raises(ValueError, match="LLMDOCS_OIDC_AUDIENCE"):
        Settings()
    monkeypatch.setenv("LLMDOCS_OIDC_AUDIENCE", "llmdocs")
    monkeypatch.setenv("LLMDOCS_OIDC_ROLE_MAP", '{"docs-team": "editor"}')
    assert Settings().oidc_role_map == {"docs-team": "editor"}
