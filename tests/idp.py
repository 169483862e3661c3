"""A local identity provider speaking the real protocol for tests: an OIDC discovery
document, a JWKS, a token endpoint for client credentials and for authorization codes
(with PKCE), and an authorization endpoint that signs in `signs_in` at once, under a
realm path of its own (as Keycloak's), with keys it can add and drop to rotate them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.responses import RedirectResponse
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from llmdocs.devservers import free_port

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
AUDIENCE = "llmdocs-api"


@dataclass
class Client:
    secret: str
    claims: dict[str, Any] = field(default_factory=dict)  # e.g. roles, realm_access


@dataclass
class Grant:
    """An authorization code's request, until the code is exchanged (once)."""

    client_id: str
    redirect_uri: str
    challenge: str
    subject: str
    claims: dict[str, Any]


class IdentityProvider:
    """Signs tokens with its current key and publishes the public half of every key it
    holds; counts discovery and JWKS requests, so tests see how often they are fetched."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # a realm path unique per provider: a port used again is another issuer
        self.realm = f"/realms/{uuid.uuid4().hex[:8]}"
        self.issuer = self.base + self.realm
        self.keys: dict[str, PrivateKey] = {}
        self.current = ""
        self.clients: dict[str, Client] = {}
        self.jwks_hits = 0
        self.discovery_hits = 0
        # who the authorization endpoint signs in (as if they had typed their password),
        # with these claims in their token; None: it refuses everyone
        self.signs_in: str | None = "alice"
        self.user_claims: dict[str, Any] = {}
        self.grants: dict[str, Grant] = {}
        self.add_key("RS256")

    def add_key(self, alg: str = "RS256") -> str:
        """A new key, signing from now on; the old ones stay published until dropped."""
        kid = f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = (ec.generate_private_key(ec.SECP256R1()) if alg == "ES256"
                          else rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.current = kid
        return kid

    def drop_key(self, kid: str) -> None:
        del self.keys[kid]

    def alg_of(self, kid: str) -> str:
        return "ES256" if isinstance(self.keys[kid], ec.EllipticCurvePrivateKey) else "RS256"

    def sign(self, sub: str = "alice", kid: str | None = None, **claims: Any) -> str:
        """An access token as the provider issues it; a claim given as None is left out."""
        kid = kid or self.current
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now,
                "exp": now + 300, "jti": uuid.uuid4().hex, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.keys[kid],
                          algorithm=self.alg_of(kid), headers={"kid": kid})

    def confused(self, claims: dict[str, Any]) -> str:
        """An HS256 token whose HMAC secret is the current key's public PEM: the HS/RS
        confusion attack (PyJWT refuses PEM secrets, so the HMAC is made by hand)."""
        def part(value: bytes) -> str:
            return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

        secret = self.keys[self.current].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.current}).encode())
        body = part(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{part(mac)}"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) \
                else RSAAlgorithm
            jwk = algorithm.to_jwk(key.public_key(), as_dict=True)  # type: ignore[call-overload]
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": self.alg_of(kid)})
        return {"keys": keys}

    def exchange(self, code: str | None, client_id: str | None, redirect_uri: str | None,
                 verifier: str | None) -> dict[str, Any]:
        """An access token for an authorization code, once, to the client that asked
        for it, with the verifier whose S256 hash the request named (RFC 7636)."""
        grant = self.grants.pop(code or "", None)
        if grant is None or (client_id, redirect_uri) != (grant.client_id, grant.redirect_uri):
            raise HTTPException(400, {"error": "invalid_grant"})
        digest = hashlib.sha256((verifier or "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            raise HTTPException(400, {"error": "invalid_grant"})
        return {"access_token": self.sign(grant.subject, **grant.claims),
                "token_type": "Bearer", "expires_in": 300}

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None)
        realm = self.realm

        @app.get(f"{realm}/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            self.discovery_hits += 1
            return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/protocol/certs",
                    "token_endpoint": f"{self.issuer}/protocol/token",
                    "authorization_endpoint": f"{self.issuer}/protocol/auth",
                    "grant_types_supported": ["client_credentials", "authorization_code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"]}

        @app.get(f"{realm}/protocol/certs")
        async def certs() -> dict[str, Any]:
            self.jwks_hits += 1
            return self.jwks()

        @app.get(f"{realm}/protocol/auth")
        async def authorize(response_type: str, client_id: str, redirect_uri: str,
                            state: str, code_challenge: str,
                            code_challenge_method: str) -> RedirectResponse:
            if response_type != "code" or code_challenge_method != "S256":
                raise HTTPException(400, {"error": "invalid_request"})
            if self.signs_in is None:
                return RedirectResponse(
                    f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}")
            code = uuid.uuid4().hex
            self.grants[code] = Grant(client_id, redirect_uri, code_challenge, self.signs_in,
                                      dict(self.user_claims))
            return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

        @app.post(f"{realm}/protocol/token")
        async def token(grant_type: str = Form(), client_id: str | None = Form(None),
                        client_secret: str | None = Form(None),
                        code: str | None = Form(None), redirect_uri: str | None = Form(None),
                        code_verifier: str | None = Form(None),
                        authorization: str | None = Header(None)) -> dict[str, Any]:
            if grant_type == "authorization_code":
                return self.exchange(code, client_id, redirect_uri, code_verifier)
            if authorization and authorization.startswith("Basic "):  # client_secret_basic
                client_id, _, client_secret = base64.b64decode(
                    authorization[6:]).decode().partition(":")
            client = self.clients.get(client_id or "")
            if grant_type != "client_credentials":
                raise HTTPException(400, {"error": "unsupported_grant_type"})
            if client is None or client.secret != client_secret:
                raise HTTPException(401, {"error": "invalid_client"})
            return {"access_token": self.sign(str(client_id), **client.claims),
                    "token_type": "Bearer", "expires_in": 300}

        return app
