"""Secrets sealed at rest: AES-256-GCM, bound to their row, opened only by the same key;
the key made once into the data dir (embedded), taken from LLMDOCS_SECRET_KEY, or
derived from the shared JWT secret (distributed, so every replica has the same)."""

from __future__ import annotations

import base64
import secrets

import pytest
from pydantic import SecretStr

from llmdocs.core.config import Settings
from llmdocs.core.secretbox import SealError, SecretBox, secret_box


def test_a_sealed_secret_opens_with_its_key_and_context_only() -> None:
    box = SecretBox(secrets.token_bytes(32))
    sealed = box.seal("whsec_abc", "row-1")
    assert sealed.startswith("v1:") and "whsec_abc" not in sealed
    assert sealed != box.seal("whsec_abc", "row-1")  # a fresh nonce each time
    assert box.open(sealed, "row-1") == "whsec_abc"
    with pytest.raises(SealError):
        box.open(sealed, "row-2")  # copied into another row
    with pytest.raises(SealError):
        SecretBox(secrets.token_bytes(32)).open(sealed, "row-1")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        box.open(tampered, "row-1")
    with pytest.raises(SealError):
        box.open("v0:" + sealed[3:], "row-1")


def test_embedded_mode_makes_its_key_once(settings: Settings) -> None:
    sealed = secret_box(settings).seal("s")
    key_file = settings.data_dir / "secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secret_box(settings).open(sealed) == "s"


def test_distributed_replicas_share_a_key(settings: Settings) -> None:
    distributed = settings.model_copy(update={
        "database_url": "postgresql+asyncpg://u@db/llmdocs"})
    sealed = secret_box(distributed).seal("s")
    other = distributed.model_copy(update={"data_dir": settings.data_dir / "elsewhere"})
    assert secret_box(other).open(sealed) == "s"
    assert not (settings.data_dir / "secret-key").exists()


def test_a_configured_key_is_used_and_checked(settings: Settings) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    configured = settings.model_copy(update={"secret_key": SecretStr(key)})
    sealed = secret_box(configured).seal("s")
    assert SecretBox(base64.b64decode(key)).open(sealed) == "s"
    for bad in ("short", base64.b64encode(b"x" * 16).decode()):
        with pytest.raises(ValueError, match="LLMDOCS_SECRET_KEY"):
            secret_box(settings.model_copy(update={"secret_key": SecretStr(bad)}))
