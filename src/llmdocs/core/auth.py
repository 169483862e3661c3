"""JWT bearer auth: who is calling and which scopes they hold, so each service judges
a caller's rights itself, whether a user, a service, or a service acting for a user."""

from __future__ import annotations

import json
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cachetools import LRUCache
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from llmdocs.core import oidc
from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem
from llmdocs.core.roles import SERVICE_SCOPES as SERVICE_SCOPES  # callers know it here
from llmdocs.core.roles import names, scopes_for
from llmdocs.core.tls import check_peer

ALGORITHM = "HS256"
MAX_SUBJECT = 200  # the owner columns' width (runs, executions, sessions, usage)
_BEARER_CHALLENGE = oidc.BEARER_CHALLENGE


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    claims: dict[str, Any] = field(default_factory=dict)
    # the llmdocs roles the token names (its scopes include what they grant)
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str | None:
        """The service acting for the subject (an on-behalf-of token's `act.sub`)."""
        act = self.claims.get("act")
        return str(act["sub"]) if isinstance(act, dict) and "sub" in act else None

    @property
    def is_service(self) -> bool:
        """A service acting as itself; one acting for a caller is judged as the caller."""
        return self.subject.startswith("service:") and self.actor is None

    def allows(self, scope: str) -> bool:
        return any(_grants(held, scope) for held in self.scopes)

    def acts_for_anyone(self, admin_scope: str) -> bool:
        """Services, and holders of the area's admin scope, act for any user."""
        return self.is_service or self.allows(admin_scope)

    def user(self, claimed: str | None, admin_scope: str) -> str:
        """Who a request is for: the user it names, when the caller may act for anyone;
        otherwise the caller, whatever the request says."""
        return claimed if claimed and self.acts_for_anyone(admin_scope) else self.subject

    def acting_for(self, claimed: str | None, admin_scope: str) -> str:
        """Who a request is for, as `user`, but naming another user without the right to
        is refused (a 403 that says so) rather than quietly replaced by the caller."""
        user = self.user(claimed, admin_scope)
        if claimed and claimed != user:
            raise Problem(403, f"The token is for {self.subject!r}: it may not act for user "
                          f"{claimed!r} (that takes the {admin_scope} scope). Leave user_id "
                          "out to act as yourself.")
        return user

    def may_touch(self, owner: str | None, admin_scope: str) -> bool:
        """Whether the caller may see or change what `owner` made."""
        return self.acts_for_anyone(admin_scope) or owner == self.subject


def _grants(held: str, wanted: str) -> bool:
    # a `*` grants a whole family or action: `docs:*`, `*:read`, `*`
    if held == wanted or held == "*":
        return True
    held_family, _, held_action = held.partition(":")
    wanted_family, _, wanted_action = wanted.partition(":")
    family_ok = held_family in ("*", wanted_family)
    action_ok = held_action in ("*", wanted_action)
    return family_ok and action_ok


def issue_token(
    settings: Settings, subject: str, scopes: Iterable[str], ttl_seconds: int | None = None,
    roles: Iterable[str] = (),
) -> str:
    expires = int(time.time()) + (ttl_seconds or settings.token_ttl_seconds)
    return _signed(settings, subject, scopes, expires, roles)


def _signed(settings: Settings, subject: str, scopes: Iterable[str], expires: int,
            roles: Iterable[str] = (), **extra: Any) -> str:
    claims = {
        "sub": subject,
        "scopes": sorted(set(scopes)),
        **({"roles": sorted(set(roles))} if roles else {}),
        **extra,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(time.time()),
        "exp": expires,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.signing_key, algorithm=ALGORITHM)


def service_token(settings: Settings, service: str) -> str:
    # short-lived; whose subject `service:<key>` marks the caller as a service
    return issue_token(settings, f"service:{service}", (),
                       settings.service_token_ttl_seconds, roles=["service"])


# on-behalf-of tokens by signing key, actor and caller (subject, rights and its token's
# claims), each reused for half its life: the next hop then finds it verified already,
# and a caller's every request (an MCP session's tool calls) no longer signs and verifies
# a token of its own. The subject is part of the key on its own: a principal a service
# makes for someone (a subscription's owner) carries no claims, and two such callers with
# the same rights must never share a token.
_delegated: LRUCache[tuple[str, str, str, frozenset[str], frozenset[str], str],
                     tuple[str, float]] = LRUCache(maxsize=4096)


def delegated_token(settings: Settings, actor: str, principal: Principal) -> str:
    """An on-behalf-of token for `actor` (a service key) acting for `principal`: the
    caller's subject and scopes and never more, `act` naming the service (with any actor
    before it nested, RFC 8693), and an `exp` no later than the caller's own token's."""
    key = (settings.signing_key, actor, principal.subject, principal.scopes, principal.roles,
           json.dumps(principal.claims, sort_keys=True, default=str))
    now = time.time()
    kept = _delegated.get(key)
    if kept is not None and kept[1] > now:
        return kept[0]
    token, expires = _delegating(settings, actor, principal)
    _delegated[key] = (token, min(now + settings.service_token_ttl_seconds / 2, expires - 5))
    return token


def _delegating(settings: Settings, actor: str, principal: Principal) -> tuple[str, int]:
    expires = int(time.time()) + settings.service_token_ttl_seconds
    if isinstance(principal.claims.get("exp"), int | float):
        expires = min(expires, int(principal.claims["exp"]))
    act: dict[str, Any] = {"sub": f"service:{actor}"}
    if isinstance(principal.claims.get("act"), dict):
        act["act"] = principal.claims["act"]
    return _signed(settings, principal.subject, principal.scopes, expires, principal.roles,
                   act=act), expires


# verified tokens by what verified them (key, audience, issuer) and the token: a client
# sends the same token on every request, and decoding it is a sizeable share of a fast
# request's cost; `exp` is still checked
_verified: LRUCache[tuple[str, str, str, str], tuple[Principal, float]] = LRUCache(maxsize=4096)


def verify_token(settings: Settings, token: str) -> Principal:
    """The caller an llmdocs token (HS256, signed with our secret) names."""
    cache_key = _own_key(settings, token)
    return _cached(cache_key) or _remember(cache_key, _decode(settings, token))


def _own_key(settings: Settings, token: str) -> tuple[str, str, str, str]:
    return (settings.signing_key, settings.jwt_audience, settings.jwt_issuer, token)


def _cached(cache_key: tuple[str, str, str, str]) -> Principal | None:
    hit = _verified.get(cache_key)
    return hit[0] if hit is not None and hit[1] > time.time() else None


def _remember(cache_key: tuple[str, str, str, str], principal: Principal) -> Principal:
    _verified[cache_key] = (principal, float(principal.claims["exp"]))
    return principal


def _decode(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise Problem(401, f"The access token {_what_is_wrong(settings, exc)}",
                      headers=_BEARER_CHALLENGE) from None
    return _principal(settings, str(claims["sub"]),
                      names(claims.get("scopes", claims.get("scope", []))),
                      names(claims.get("roles")), claims)


def _principal(settings: Settings, subject: str, scopes: Iterable[str], roles: Iterable[str],
               claims: dict[str, Any]) -> Principal:
    """The caller a verified token names: its own scopes and those its roles grant."""
    if not (0 < len(subject) <= MAX_SUBJECT and subject.isprintable()):
        raise Problem(401, f"The access token's subject must be 1 to {MAX_SUBJECT} "
                      "printable characters: it is stored as the owner of what it makes.",
                      headers=_BEARER_CHALLENGE)
    held = frozenset(roles)
    return Principal(subject=subject, scopes=frozenset(scopes) | scopes_for(settings, held),
                     claims=claims, roles=held)


async def authenticate(settings: Settings, token: str) -> Principal:
    """The caller a bearer token names: an identity provider's token (when one is
    configured and the token names its kind of algorithm) checked with the provider's
    keys, any other with llmdocs' own secret."""
    if not settings.oidc_issuer:
        return verify_token(settings, token)
    # verified by the provider's key set of this generation: a dropped key stops working
    keys = oidc.keys_of(settings.oidc_issuer)
    provider_key = (f"oidc#{keys.generation}", settings.oidc_audience,
                    settings.oidc_issuer, token)
    found = _cached(_own_key(settings, token)) or _cached(provider_key)
    if found is not None:  # a cached caller: no header to parse
        return found
    if not oidc.is_for_identity_provider(token):
        return verify_token(settings, token)
    claims = await oidc.verified_claims(settings, token)
    subject, roles = oidc.identity(settings, claims)
    return _remember((f"oidc#{keys.generation}", *provider_key[1:]),
                     _principal(settings, subject, (), roles, claims))


def _what_is_wrong(settings: Settings, exc: jwt.PyJWTError) -> str:
    """Why a token was refused, in words that point at the fix and name no secret."""
    match exc:
        case jwt.ExpiredSignatureError():
            return "has expired: get a new one (`llmdocs token`)."
        case jwt.InvalidSignatureError():
            return ("is signed with another key: is LLMDOCS_DATA_DIR (or LLMDOCS_JWT_SECRET) "
                    "the running instance's?")
        case jwt.InvalidAudienceError():
            return f"is for another audience: this service accepts {settings.jwt_audience!r}."
        case jwt.InvalidIssuerError():
            return f"is from another issuer: this service accepts {settings.jwt_issuer!r}."
        case jwt.MissingRequiredClaimError():
            return f"lacks the {exc.claim!r} claim."
        case jwt.ImmatureSignatureError() | jwt.InvalidIssuedAtError():
            return "is not valid yet: are the issuer's and this machine's clocks apart?"
        case jwt.InvalidAlgorithmError():
            return f"is not signed with {ALGORITHM}, the only algorithm accepted."
        case jwt.DecodeError():
            return "is malformed: a JWT is three base64url parts separated by dots."
    return f"is not valid: {exc}."


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "This endpoint needs an 'Authorization: Bearer <token>' header.",
                      headers=_BEARER_CHALLENGE)
    return token.strip()


# declares the bearer scheme in each service's OpenAPI document; verification is ours
_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="A JWT issued by `llmdocs token`, a service token, "
                     "or the configured identity provider's access token.")


# every dependency `require()` made: a route holding one checks the token itself
_auth_dependencies: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def is_auth_dependency(call: Any) -> bool:
    """Whether `call` is a token check made by `require()`."""
    try:
        return call in _auth_dependencies
    except TypeError:  # not weak-referenceable, so not one of ours
        return False


def authenticating(dependency: Callable[..., Any]) -> None:
    """Mark `dependency` as a check of the caller of its own (a session cookie's, say):
    the app adds no bearer-token check to a route that holds it."""
    _auth_dependencies.add(dependency)


def require(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A route dependency: the caller must hold every one of `scopes`. The scopes also
    appear in the operation's OpenAPI `security`, so discovery can read them."""

    async def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(_bearer,
                                                                     scopes=list(scopes)),
    ) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            # core.ratelimit's, where the app has one: refused tokens count per address
            limiter = getattr(request.app.state, "limiter", None)
            if limiter is not None:
                limiter.check_address(request)
            try:
                principal = await authenticate(request.app.state.settings,
                                               bearer_token(request))
                check_peer(request.scope, principal.actor or principal.subject)
            except Problem as refused:
                if refused.status == 401 and limiter is not None:  # not a provider's outage
                    await limiter.refused(request)
                raise
            request.state.principal = principal
            if limiter is not None:
                await limiter.admit(request, principal)
        missing = [scope for scope in scopes if not principal.allows(scope)]
        if missing:
            raise Problem(403, f"The token lacks the scope(s): {', '.join(missing)}.")
        return principal

    _auth_dependencies.add(dependency)
    return dependency
