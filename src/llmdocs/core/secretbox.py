"""Secrets kept at rest (a webhook's signing secret, an SMTP password) are sealed with
AES-256-GCM: a leaked database row or backup gives nothing without the key. The key is
`LLMDOCS_SECRET_KEY` (base64 of 32 bytes); embedded mode makes one once into the data
dir; a distributed deployment without one derives it from the shared JWT secret, which
every replica has already (set LLMDOCS_SECRET_KEY to rotate the two apart)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from llmdocs.core.config import Settings

VERSION = "v1"  # of the sealed format: "v1:<base64 of nonce + ciphertext + tag>"
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that this key cannot open: another key, or altered."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str = "") -> str:
        """`context` (e.g. the row's id) is authenticated too: a sealed value copied into
        another row does not open there."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str = "") -> str:
        version, _, payload = sealed.partition(":")
        if version != VERSION:
            raise SealError(f"unknown sealed format {version!r}")
        try:
            raw = base64.b64decode(payload, validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                      context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealError("cannot open a sealed secret: another key, or altered") from exc


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(_key(settings))


def _key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        try:
            key = base64.b64decode(settings.secret_key.get_secret_value(), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ValueError("LLMDOCS_SECRET_KEY must be the base64 of 32 random bytes")
        return key
    if settings.embedded:
        path = settings.data_dir / "secret-key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return base64.b64decode(path.read_text().strip())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"llmdocs secretbox v1").derive(settings.signing_key.encode())
