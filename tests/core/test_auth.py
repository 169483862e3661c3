"""On-behalf-of tokens: a service acting for a caller carries the caller's subject and
scopes (never more), names itself as the actor (RFC 8693 `act`), ends no later than the
caller's own token, and is judged as the caller, not as a service."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from llmdocs.core.auth import (
    ALGORITHM,
    SERVICE_SCOPES,
    Principal,
    delegated_token,
    issue_token,
    service_token,
    verify_token,
)
from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem


def claims(settings: Settings, token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, settings.signing_key, algorithms=[ALGORITHM],
                                            audience=settings.jwt_audience)
    return decoded


def test_a_delegated_token_is_the_caller_with_the_service_as_actor(settings: Settings) -> None:
    user = verify_token(settings, issue_token(settings, "user:ann", ["docs:read", "workflows:*"]))
    token = delegated_token(settings, "orchestrator", user)
    acting = verify_token(settings, token)
    assert acting.subject == "user:ann" and acting.scopes == user.scopes
    assert acting.actor == "service:orchestrator" and user.actor is None
    assert not acting.is_service and not acting.allows("docs:write")
    assert claims(settings, token)["act"] == {"sub": "service:orchestrator"}


def test_callers_with_the_same_rights_never_share_a_token(settings: Settings) -> None:
    """Tokens are reused per caller; a principal a service makes for someone (a
    subscription's owner) has no claims, so the subject alone must tell them apart."""
    alice, bob = (Principal(subject=who, scopes=frozenset({"docs:read"}), roles=frozenset(),
                            claims={}) for who in ("user:alice", "user:bob"))
    for_alice = delegated_token(settings, "notification", alice)
    assert verify_token(settings, delegated_token(settings, "notification", bob)
                        ).subject == "user:bob"
    assert delegated_token(settings, "notification", alice) == for_alice  # reused


def test_it_ends_no_later_than_the_callers_token(settings: Settings) -> None:
    short = verify_token(settings, issue_token(settings, "user:ann", ["*"], ttl_seconds=20))
    exp = claims(settings, delegated_token(settings, "orchestrator", short))["exp"]
    assert exp == short.claims["exp"]
    long = verify_token(settings, issue_token(settings, "user:ann", ["*"], ttl_seconds=86400))
    exp = claims(settings, delegated_token(settings, "orchestrator", long))["exp"]
    assert isinstance(exp, int)
    assert exp <= int(time.time()) + settings.service_token_ttl_seconds < long.claims["exp"]


def test_a_service_caller_keeps_its_scopes_but_is_judged_as_a_caller(
        settings: Settings) -> None:
    """A service acting as itself acts for anyone; acting for a service, another one is
    that service's caller, not a service of its own."""
    service = verify_token(settings, service_token(settings, "interpreter"))
    assert service.is_service and service.acts_for_anyone("workflows:admin")
    acting = verify_token(settings, delegated_token(settings, "orchestrator", service))
    assert acting.subject == "service:interpreter"
    assert acting.scopes == frozenset(SERVICE_SCOPES)
    assert not acting.is_service and not acting.acts_for_anyone("workflows:admin")


def test_actors_nest_when_a_delegated_caller_is_acted_for_again(settings: Settings) -> None:
    user = verify_token(settings, issue_token(settings, "user:ann", ["services:write"]))
    first = verify_token(settings, delegated_token(settings, "orchestrator", user))
    second = verify_token(settings, delegated_token(settings, "discovery", first))
    assert second.subject == "user:ann" and second.actor == "service:discovery"
    assert second.claims["act"] == {"sub": "service:discovery",
                                    "act": {"sub": "service:orchestrator"}}


def test_an_act_claim_without_a_subject_names_no_actor() -> None:
    assert Principal("service:x", claims={"act": "service:y"}).actor is None
    assert Principal("service:x", claims={"act": {}}).is_service


def signed(settings: Settings, key: str | None = None, algorithm: str = ALGORITHM,
           **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "user:ann", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "iat": now, "exp": now + 60, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None},
                      settings.signing_key if key is None else key, algorithm=algorithm)


@pytest.mark.parametrize(("make", "said"), [
    (lambda s: signed(s, exp=int(time.time()) - 10), "has expired"),
    (lambda s: signed(s, key="another-" + "k" * 40), "signed with another key: is "
                                                      "LLMDOCS_DATA_DIR"),
    (lambda s: signed(s, aud="elsewhere"), "another audience: this service accepts 'llmdocs'"),
    (lambda s: signed(s, iss="elsewhere"), "another issuer"),
    (lambda s: signed(s, sub=None), "lacks the 'sub' claim"),
    (lambda s: signed(s, nbf=int(time.time()) + 3600), "not valid yet"),
    (lambda s: signed(s, key="", algorithm="none"), "not signed with HS256"),
    (lambda s: "not-a-jwt", "is malformed"),
])
def test_a_refused_token_is_told_what_is_wrong_with_it_and_no_secret(
    settings: Settings, make: Any, said: str
) -> None:
    with pytest.raises(Problem) as refused:
        verify_token(settings, make(settings))
    assert refused.value.status == 401
    assert said in refused.value.detail
    assert settings.signing_key not in refused.value.detail
