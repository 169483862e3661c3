"""Sign-in through the identity provider: the authorization-code flow with PKCE (RFC
7636; a public client, no secret). The state, the verifier and where to go after wait in
a short-lived cookie signed by us, so any replica can finish what another began."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from llmdocs.core.config import Settings
from llmdocs.core.errors import Problem
from llmdocs.services.web.errors import SignInRefused
from llmdocs.services.web.settings import WebSettings

FLOW_SECONDS = 600  # time to sign in at the provider
TIMEOUT_SECONDS = 10.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the callback must see again."""

    state: str
    verifier: str
    next: str
    expires: float


def _mac(settings: Settings, body: str) -> str:
    return hmac.new(settings.signing_key.encode(), f"oidc-flow:{body}".encode(),
                    hashlib.sha256).hexdigest()


def seal(settings: Settings, flow: Flow) -> str:
    """The flow as a cookie value only we can make (the verifier is no secret from the
    browser that holds it; it proves the same browser comes back)."""
    body = _b64(json.dumps(flow.__dict__).encode())
    return f"{body}.{_mac(settings, body)}"


def unseal(settings: Settings, value: str | None, state: str) -> Flow:
    """The flow a callback continues, refused if made elsewhere, late, or for another
    `state` (a forged callback)."""
    body, _, mac = (value or "").partition(".")
    if not body or not hmac.compare_digest(mac, _mac(settings, body)):
        raise SignInRefused("This sign-in did not start in this browser: sign in again.")
    flow = Flow(**json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    if flow.expires < time.time():
        raise SignInRefused("This sign-in took too long: sign in again.")
    if not hmac.compare_digest(flow.state, state):
        raise SignInRefused("This sign-in answer is for another sign-in: sign in again.")
    return flow


async def _discovered(settings: Settings) -> dict[str, Any]:
    url = f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            answer = await http.get(url, headers={"Accept": "application/json"})
            answer.raise_for_status()
            found = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Problem(503, f"The identity provider {settings.oidc_issuer} cannot be "
                      f"reached: {exc}", headers={"Retry-After": "10"}) from None
    if not isinstance(found, dict) or "authorization_endpoint" not in found:
        raise Problem(503, f"The identity provider {settings.oidc_issuer} offers no "
                      "authorization-code sign-in.", headers={"Retry-After": "60"})
    return found


def callback_url(settings: Settings) -> str:
    return f"{settings.url_for('web')}/login/callback"


async def begin(settings: Settings, config: WebSettings, next_path: str) -> tuple[str, Flow]:
    """Where to send the browser, and the flow to keep in its cookie."""
    provider = await _discovered(settings)
    flow = Flow(state=secrets.token_urlsafe(24), verifier=secrets.token_urlsafe(48),
                next=next_path, expires=time.time() + FLOW_SECONDS)
    challenge = _b64(hashlib.sha256(flow.verifier.encode()).digest())
    query = urlencode({"response_type": "code", "client_id": config.oidc_client_id,
                       "redirect_uri": callback_url(settings), "scope": config.oidc_scopes,
                       "state": flow.state, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return f"{provider['authorization_endpoint']}?{query}", flow


async def finish(settings: Settings, config: WebSettings, code: str, flow: Flow) -> str:
    """The access token the provider gives for `code` and the flow's verifier."""
    provider = await _discovered(settings)
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": callback_url(settings), "client_id": config.oidc_client_id,
            "code_verifier": flow.verifier}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            answer = await http.post(str(provider["token_endpoint"]), data=form)
    except httpx.HTTPError as exc:
        raise Problem(503, f"The identity provider did not answer: {exc}",
                      headers={"Retry-After": "10"}) from None
    if answer.status_code >= 500:
        raise Problem(503, "The identity provider failed to answer; try again.",
                      headers={"Retry-After": "10"})
    try:
        token = answer.json().get("access_token") if answer.is_success else None
    except ValueError:
        token = None
    if not isinstance(token, str):
        raise SignInRefused("The identity provider did not sign you in: start again.")
    return token
