"""A local identity provider speaking the real protocol for tests: an OIDC discovery
document, a JWKS, and a client-credentials token endpoint, under a realm path of its
own (as Keycloak's), with keys it can add and drop to rotate them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Form, Header, HTTPException
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from llmdocs.devservers import free_port

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
AUDIENCE = "llmdocs-api"


@dataclass
class Client:
    secret: str
    claims: dict[str, Any] = field(default_factory=dict)  # e.g. roles, realm_access


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

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None)
        realm = self.realm

        @app.get(f"{realm}/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            self.discovery_hits += 1
            return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/protocol/certs",
                    "token_endpoint": f"{self.issuer}/protocol/token",
                    "grant_types_supported": ["client_credentials"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"]}

        @app.get(f"{realm}/protocol/certs")
        async def certs() -> dict[str, Any]:
            self.jwks_hits += 1
            return self.jwks()

        @app.post(f"{realm}/protocol/token")
        async def token(grant_type: str = Form(), client_id: str | None = Form(None),
                        client_secret: str | None = Form(None),
                        authorization: str | None = Header(None)) -> dict[str, Any]:
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
