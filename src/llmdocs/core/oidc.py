"""Sign-in through the organisation's identity provider (OIDC): its RS256/PS256/ES256
access tokens are accepted beside llmdocs' own, checked only with the keys its JWKS
publishes, so users and CI jobs need no llmdocs-issued token."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem
from llmdocs.core.roles import names

# the algorithms an identity provider's token may name, and the key type each needs: the
# header picks the path, never the kind of key (an HS256 token is only ever checked with
# llmdocs' own secret, so a public key cannot be used as an HMAC secret)
ALGORITHMS: dict[str, str] = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
# an identity provider's subjects are namespaced: its `sub` may not pose as one of ours
# (`service:*` acts for anyone, `user:admin` is the CLI's)
SUBJECT_PREFIX = "oidc:"
FETCH_TIMEOUT_SECONDS = 5.0
# the provider's clock and ours may differ a little: `exp`, `nbf` and `iat` allow this
LEEWAY_SECONDS = 30
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="llmdocs"'}


def header(token: str) -> dict[str, Any]:
    """The token's unverified header, or {} when it has none that parses: read by hand,
    as PyJWT's `get_unverified_header` costs some 100 us, more than a whole cached
    request's check."""
    head = token.partition(".")[0]
    try:
        found = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:  # bad base64 (binascii.Error), JSON or UTF-8
        return {}
    return found if isinstance(found, dict) else {}


def is_for_identity_provider(token: str) -> bool:
    """Whether the token's header names an identity provider's algorithm; all else,
    `none` and malformed tokens included, goes to llmdocs' own check."""
    alg = header(token).get("alg")
    return isinstance(alg, str) and alg in ALGORITHMS


@dataclass(frozen=True)
class SigningKey:
    key: PyJWK
    declared_alg: str | None  # the JWK's own `alg`, when it names one

    def fits(self, alg: str) -> bool:
        """Whether a token naming `alg` may be checked with this key."""
        if self.key.key_type != ALGORITHMS[alg]:
            return False
        if self.declared_alg is not None or self.key.key_type == "EC":
            return self.key.algorithm_name == alg  # an EC key's curve decides
        return True


class IssuerKeys:
    """One issuer's signing keys, found through its discovery document and cached; an
    unknown `kid` fetches them again, at most once per refresh interval."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.keys: dict[str | None, SigningKey] = {}
        self.generation = 0  # bumped on each fetch: verified tokens are cached per set
        self.jwks_uri: str | None = None
        self.fetched_at: float | None = None  # the last attempt, on the monotonic clock
        self.failed = False  # whether that attempt met an outage
        # one fetch at a time, per event loop (a lock binds to the loop it waits on)
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    def find(self, kid: str | None) -> SigningKey | None:
        if kid is None and len(self.keys) == 1:  # a provider with one key may omit kid
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    async def key(self, settings: Settings, kid: str | None) -> SigningKey:
        """The key `kid` names, fetching the key set again when it is unknown and the
        last fetch is older than the refresh interval."""
        found = self.find(kid)
        if found is not None:
            return found
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            found = self.find(kid)  # fetched by a request that held the lock before
            if found is not None:
                return found
            wait = self._wait(settings)
            if wait > 0 and self.failed:
                raise _outage(self.issuer, wait)
            if wait <= 0:
                await self._refresh(settings)
        found = self.find(kid)
        if found is None:
            raise Problem(401, f"The access token is signed with a key ({kid!r}) that "
                          f"{self.issuer} does not publish.", headers=BEARER_CHALLENGE)
        return found

    def _wait(self, settings: Settings) -> float:
        if self.fetched_at is None:
            return 0.0
        return self.fetched_at + settings.oidc_jwks_refresh_seconds - time.monotonic()

    async def _refresh(self, settings: Settings) -> None:
        self.fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as http:
                if self.jwks_uri is None:
                    found = await _json(http, f"{self.issuer.rstrip('/')}"
                                              "/.well-known/openid-configuration")
                    if found.get("issuer") != self.issuer:
                        raise ValueError(f"its discovery document names issuer "
                                         f"{found.get('issuer')!r}")
                    self.jwks_uri = str(found["jwks_uri"])
                keys = _signing_keys(await _json(http, self.jwks_uri))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.failed, self.jwks_uri = True, None  # discover again next time
            raise _outage(self.issuer, settings.oidc_jwks_refresh_seconds, exc) from None
        self.keys, self.failed = keys, False
        self.generation += 1


async def _json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await http.get(url, headers={"Accept": "application/json"})
    answer.raise_for_status()
    found = answer.json()
    if not isinstance(found, dict):
        raise ValueError(f"{url} answered no JSON object")
    return found


def _signing_keys(jwks: dict[str, Any]) -> dict[str | None, SigningKey]:
    """The key set's RSA and EC signing keys by `kid`; others (encryption keys, `oct`
    secrets, curves we do not take) are left out rather than failing the whole set."""
    keys: dict[str | None, SigningKey] = {}
    for item in jwks["keys"]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig" \
                or item.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = PyJWK(item)
        except jwt.PyJWTError:
            continue
        declared = item.get("alg")
        keys[key.key_id] = SigningKey(key, declared if isinstance(declared, str) else None)
    return keys


def _outage(issuer: str, wait: float, exc: Exception | None = None) -> Problem:
    """A 503: the token may well be good, but its key cannot be had from the provider."""
    why = f" ({type(exc).__name__}: {str(exc)[:200]})" if exc is not None else ""
    return Problem(503, f"The identity provider {issuer} could not be reached for its "
                   f"signing keys{why}.", headers={"Retry-After": str(max(1, math.ceil(wait)))})


_issuers: dict[str, IssuerKeys] = {}


def keys_of(issuer: str) -> IssuerKeys:
    """The process' key cache for `issuer`, shared by every service it runs."""
    return _issuers.setdefault(issuer, IssuerKeys(issuer))


async def verified_claims(settings: Settings, token: str) -> dict[str, Any]:
    """The token's claims once its signature (by a key the issuer publishes), issuer,
    audience and lifetime are checked; a refusal is a 401, an unreachable provider 503."""
    head = header(token)
    alg, kid = str(head.get("alg")), head.get("kid")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise _refused(f"is malformed ({exc}).") from None
    if alg not in ALGORITHMS:
        raise _refused(f"names {alg}, which is not one of {', '.join(ALGORITHMS)}.")
    if issuer != settings.oidc_issuer:
        raise _refused(f"is from another issuer: this service accepts "
                       f"{settings.oidc_issuer!r} and llmdocs' own tokens.")
    if kid is not None and not isinstance(kid, str):
        raise _refused("names a key id that is no string.")
    signing = await keys_of(settings.oidc_issuer).key(settings, kid)
    if not signing.fits(alg):
        raise _refused(f"names {alg}, which its key {kid!r} is not for.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, signing.key.key, algorithms=[alg], audience=settings.oidc_audience,
            issuer=settings.oidc_issuer, leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise _refused("has expired: sign in again.") from None
    except jwt.InvalidAudienceError:
        raise _refused(f"is for another audience: this service accepts "
                       f"{settings.oidc_audience!r}.") from None
    except jwt.PyJWTError as exc:
        raise _refused(f"is not valid: {exc}.") from None
    return claims


def identity(settings: Settings, claims: dict[str, Any]) -> tuple[str, list[str]]:
    """The subject (namespaced) and llmdocs roles of a provider's verified claims: roles
    from the configured claim (a dotted path), through the role map when one is set (then
    only mapped names count, so the provider's unrelated roles grant nothing)."""
    found: Any = claims
    for part in settings.oidc_roles_claim.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    given = names(found)
    if settings.oidc_role_map:
        given = [settings.oidc_role_map[name] for name in given
                 if name in settings.oidc_role_map]
    return SUBJECT_PREFIX + str(claims["sub"]), given


def _refused(why: str) -> Problem:
    return Problem(401, f"The access token {why}", headers=BEARER_CHALLENGE)
