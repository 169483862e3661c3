"""Sign-in: one-time links, pasted tokens and provider tokens become sessions, which
the cookie names; what a page may do is what the session's user may do."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from llmdocs.core.auth import ALGORITHM, Principal, authenticate
from llmdocs.core.config import Settings
from llmdocs.core.db import as_utc, utcnow
from llmdocs.core.errors import Problem
from llmdocs.core.resources import Resources
from llmdocs.services.web.errors import SignInRefused
from llmdocs.services.web.models import UsedLink, WebSession
from llmdocs.services.web.settings import WebSettings

CACHE_SECONDS = 5.0  # how long a replica trusts a session it read (logout clears it)


def link_audience(settings: Settings) -> str:
    """A sign-in link's audience: no service takes it as an access token."""
    return f"{settings.jwt_audience}:web-login"


def sign_in_link(settings: Settings, config: WebSettings, subject: str,
                 scopes: Iterable[str] = ("*",), roles: Iterable[str] = ()) -> str:
    """A one-time sign-in link for `subject`, as `llmdocs up` prints (Jupyter-style)."""
    now = int(time.time())
    token = jwt.encode({
        "sub": subject, "scopes": sorted(set(scopes)), "roles": sorted(set(roles)),
        "iss": settings.jwt_issuer, "aud": link_audience(settings), "iat": now,
        "exp": now + int(config.link_minutes * 60), "jti": uuid.uuid4().hex,
    }, settings.signing_key, algorithm=ALGORITHM)
    scheme = "https" if settings.tls else "http"
    return f"{scheme}://{settings.public_host}:{settings.web_port}/login?token={token}"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    """Sessions in the database (shared by every replica), cached for a few seconds."""

    def __init__(self, settings: Settings, config: WebSettings, resources: Resources) -> None:
        self.settings = settings
        self.config = config
        self.resources = resources

    async def redeem_link(self, token: str) -> str:
        """A session for a sign-in link's user; the link works once, and not late."""
        try:
            claims = jwt.decode(token, self.settings.signing_key, algorithms=[ALGORITHM],
                                audience=link_audience(self.settings),
                                issuer=self.settings.jwt_issuer,
                                options={"require": ["sub", "exp", "jti"]})
        except jwt.ExpiredSignatureError:
            raise SignInRefused("This sign-in link has expired: ask for a new one "
                                "(`llmdocs web login`).") from None
        except jwt.PyJWTError:
            raise SignInRefused("This sign-in link is not valid for this llmdocs: ask "
                                "for a new one (`llmdocs web login`).") from None
        try:
            async with self.resources.database.transaction() as session:
                session.add(UsedLink(jti=str(claims["jti"])[:64], expires_at=as_utc(
                    utcnow() + timedelta(seconds=self.config.link_minutes * 60))))
        except IntegrityError:
            raise SignInRefused("This sign-in link was used already: a link signs in "
                                "once. Ask for a new one (`llmdocs web login`).") from None
        return await self._open(str(claims["sub"]), _names(claims.get("scopes")),
                                _names(claims.get("roles")), None)

    async def redeem_token(self, token: str) -> str:
        """A session for the user an access token names (pasted, or the provider's)."""
        try:
            principal = await authenticate(self.settings, token.strip())
        except Problem as refused:
            if refused.status != 401:
                raise  # the provider is out: a 503, not the user's mistake
            raise SignInRefused(refused.detail) from None
        if principal.is_service:
            raise SignInRefused("A service's token signs no one in to the portal.")
        exp = principal.claims.get("exp")
        return await self._open(principal.subject, principal.scopes, principal.roles,
                                float(exp) if isinstance(exp, int | float) else None)

    async def _open(self, subject: str, scopes: Iterable[str], roles: Iterable[str],
                    token_expires: float | None) -> str:
        cookie = secrets.token_urlsafe(32)
        expires = time.time() + self.config.session_hours * 3600
        if token_expires is not None:  # no longer than the token it was made from
            expires = min(expires, token_expires)
        async with self.resources.database.transaction() as session:
            session.add(WebSession(id=_hash(cookie), subject=subject,
                                   scopes=sorted(set(scopes)), roles=sorted(set(roles)),
                                   created_at=utcnow(),
                                   expires_at=as_utc(utcnow() + timedelta(
                                       seconds=expires - time.time()))))
        return cookie

    async def principal(self, cookie: str) -> Principal | None:
        """Who the cookie's session is for, while it lasts; None when none."""
        key = f"web:session:{_hash(cookie)}"
        found: dict[str, Any] | None = await self.resources.cache.get(key)
        if found is None:
            found = await self._load(_hash(cookie))
            if found is None:
                return None
            await self.resources.cache.set(key, found, CACHE_SECONDS)
        if found["exp"] <= time.time():
            return None
        # the session's rights, and an `exp` on-behalf-of tokens never outlive
        return Principal(subject=found["sub"], scopes=frozenset(found["scopes"]),
                         roles=frozenset(found["roles"]),
                         claims={"sub": found["sub"], "exp": int(found["exp"])})

    async def _load(self, digest: str) -> dict[str, Any] | None:
        async with self.resources.database.transaction() as session:
            row = await session.get(WebSession, digest)
        if row is None:
            return None
        return {"sub": row.subject, "scopes": list(row.scopes), "roles": list(row.roles),
                "exp": as_utc(row.expires_at).timestamp()}

    async def end(self, cookie: str) -> None:
        """Sign out: the session is gone here and in every replica's cache; expired
        sessions and links go with it."""
        digest = _hash(cookie)
        now = utcnow()
        async with self.resources.database.transaction() as session:
            await session.execute(delete(WebSession).where(
                (WebSession.id == digest) | (WebSession.expires_at < now)))
            await session.execute(delete(UsedLink).where(UsedLink.expires_at < now))
        await self.resources.cache.delete(f"web:session:{digest}")


def _names(raw: object) -> list[str]:
    return [str(item) for item in raw] if isinstance(raw, list) else []
