"""Encryption at rest: a key ring (`LLMDOCS_ENCRYPTION_KEYS`, key id → 256-bit key; the
last encrypts, all decrypt) and a versioned, self-describing envelope: every record gets
its own AES-256-GCM data key, wrapped by the ring's key, so a leaked row, WAL page, blob
or backup gives nothing without the ring, and rotating re-wraps without new plaintext.

Binary envelope (v1): b"LDE" 0x01 | key id length (1 byte) | key id | wrap nonce (12) |
wrapped data key (48) | data nonce (12) | ciphertext + tag. Text columns hold
"ldenc1:<key id>:<base64 of the binary envelope>" (the key id readable by SQL, for the
startup check and rotation). Values without the marker are plaintext written before
encryption was on: they read as they are, and rotation encrypts them."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"LDE\x01"
TEXT_PREFIX = "ldenc1:"
NONCE_BYTES = 12
KEY_BYTES = 32
WRAPPED_BYTES = KEY_BYTES + 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# values sealed lately, kept for reading back: a doc-store bulk batch (5,000 rows, 8 MB)
RECENT, RECENT_CHARS = 5000, 16 * 2**20
GENERATED_RING = "secret-keys.json"  # embedded mode's ring for secrets, in the data dir
DERIVED_KEY_ID = "jwt-derived"  # distributed mode's secrets key when no ring is set


class CryptoError(ValueError):
    """An encrypted record that cannot be opened (altered, or not an envelope)."""


class KeyRingError(ValueError):
    """A key ring that cannot be used: malformed, or missing where it is required."""


class UnknownKey(CryptoError):
    """A record sealed with a key the ring does not hold."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"a record is encrypted with key {key_id!r}, which "
                         f"LLMDOCS_ENCRYPTION_KEYS does not hold: add that key back to "
                         f"the ring (the last key encrypts, all of them decrypt)")


def parse_ring(raw: str) -> dict[str, bytes]:
    """The ring in a JSON object (id → base64 of 32 bytes) or in the file `raw` names."""
    text = raw.strip()
    source = "LLMDOCS_ENCRYPTION_KEYS"
    if not text.startswith("{"):
        path = Path(text).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyRingError(f"{source} is neither a JSON object nor a readable file "
                               f"({path}: {exc.strerror})") from None
        source = f"the key ring file {path}"
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyRingError(f"{source} is not valid JSON ({exc.msg})") from None
    if not isinstance(loaded, dict) or not loaded:
        raise KeyRingError(f"{source} must be a non-empty JSON object of key id → "
                           f"base64 of 32 random bytes")
    keys: dict[str, bytes] = {}
    for key_id, value in loaded.items():
        if not _KEY_ID.match(key_id):
            raise KeyRingError(f"{source}: key id {key_id!r} must be 1-64 letters, digits, "
                               f"'.', '_' or '-'")
        try:
            key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except binascii.Error:
            key = b""
        if len(key) != KEY_BYTES:
            raise KeyRingError(f"{source}: key {key_id!r} must be the base64 of exactly "
                               f"32 random bytes (e.g. `openssl rand -base64 32`)")
        keys[key_id] = key
    return keys


def new_key() -> str:
    """A fresh key, as a ring holds it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


class KeyRing:
    """Seals with the last key; opens with whichever key a record names. A ring read
    from a file follows it (a changed file is re-read at most every REFRESH_SECONDS when
    sealing, and at once when a record names a key the ring lacks), so running services
    take up the key `llmdocs keys rotate` adds without a restart."""

    REFRESH_SECONDS = 1.0

    def __init__(self, keys: Mapping[str, bytes], path: Path | None = None,
                 retired: Mapping[str, bytes] | None = None) -> None:
        if not keys:
            raise KeyRingError("a key ring needs at least one key")
        self.path = path
        # keys that only open: the secrets key used before a ring was set
        self._retired = dict(retired or {})
        self._next_check = time.monotonic() + self.REFRESH_SECONDS
        self._mtime = self._stat()
        # what this process sealed last: the search index's triggers read a row's
        # plaintext just after the row was written (`llmdocs_plain`), and decrypting
        # it again cost as much as sealing it
        self._recent: dict[str, str] = {}
        self._recent_chars = 0
        self._load(keys)

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime if self.path is not None else 0.0
        except OSError:
            return 0.0

    def refresh(self, force: bool = False) -> None:
        """Re-read the ring's file when it changed (a half-written or broken file is
        left for the next look: the keys held so far stay in use)."""
        if self.path is None or not (force or time.monotonic() >= self._next_check):
            return
        self._next_check = time.monotonic() + self.REFRESH_SECONDS
        mtime = self._stat()
        if mtime != self._mtime or force:
            with contextlib.suppress(KeyRingError):
                self._load(parse_ring(str(self.path)))
                self._mtime = mtime

    def _load(self, keys: Mapping[str, bytes]) -> None:
        self._aeads = {key_id: AESGCM(key) for key_id, key in {**self._retired, **keys}.items()}
        self.current = list(keys)[-1]
        self._header = self._header_for(self.current)

    @classmethod
    def from_value(cls, raw: str, retired: Mapping[str, bytes] | None = None) -> KeyRing:
        text = raw.strip()
        path = None if text.startswith("{") else Path(text).expanduser()
        return cls(parse_ring(text), path, retired)

    @property
    def key_ids(self) -> list[str]:
        return list(self._aeads)

    @staticmethod
    def _header_for(key_id: str) -> bytes:
        kid = key_id.encode()
        return MAGIC + bytes([len(kid)]) + kid

    def _aead(self, key_id: str) -> AESGCM:
        aead = self._aeads.get(key_id)
        if aead is None and self.path is not None:
            self.refresh(force=True)
            aead = self._aeads.get(key_id)
        if aead is None:
            raise UnknownKey(key_id)
        return aead

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """`context` is authenticated too: a value copied into another row (whose
        context differs) does not open there."""
        self.refresh()
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce, nonce = os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
        header = self._header
        wrapped = self._aeads[self.current].encrypt(wrap_nonce, data_key, header)
        body = AESGCM(data_key).encrypt(nonce, plaintext, header + context)
        return b"".join((header, wrap_nonce, wrapped, nonce, body))

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        key_id, header_end = key_id_of(sealed)
        header = sealed[:header_end]
        wrap_nonce = sealed[header_end:header_end + NONCE_BYTES]
        rest = header_end + NONCE_BYTES
        wrapped, nonce = sealed[rest:rest + WRAPPED_BYTES], sealed[
            rest + WRAPPED_BYTES:rest + WRAPPED_BYTES + NONCE_BYTES]
        body = sealed[rest + WRAPPED_BYTES + NONCE_BYTES:]
        try:
            data_key = self._aead(key_id).decrypt(wrap_nonce, wrapped, header)
            return AESGCM(data_key).decrypt(nonce, body, header + context)
        except (InvalidTag, ValueError) as exc:
            if isinstance(exc, UnknownKey):
                raise
            raise CryptoError(f"an encrypted record (key {key_id!r}) does not open: "
                              f"altered, or another key under that id") from None

    def seal_text(self, plaintext: str, context: str = "") -> str:
        sealed = self.seal(plaintext.encode(), context.encode())
        text = f"{TEXT_PREFIX}{key_id_of(sealed)[0]}:{base64.b64encode(sealed).decode()}"
        if not context:
            if len(self._recent) >= RECENT or self._recent_chars > RECENT_CHARS:
                self._recent.clear()
                self._recent_chars = 0
            self._recent[text] = plaintext
            self._recent_chars += len(plaintext)
        return text

    def open_text(self, value: str, context: str = "") -> str:
        """`value` decrypted, or as it is when it was stored before encryption."""
        if not value.startswith(TEXT_PREFIX):
            return value
        if not context and (recent := self._recent.get(value)) is not None:
            return recent
        _, _, payload = value[len(TEXT_PREFIX):].partition(":")
        try:
            sealed = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise CryptoError("an encrypted text value is not valid base64") from None
        return self.open(sealed, context.encode()).decode()

    def is_current(self, value: str | bytes) -> bool:
        """Whether `value` is sealed with the key that seals now (rotation skips it)."""
        self.refresh()
        if isinstance(value, str):
            return value.startswith(f"{TEXT_PREFIX}{self.current}:")
        return value.startswith(self._header)


def is_sealed(value: bytes) -> bool:
    return value.startswith(MAGIC)


def key_id_of(sealed: bytes) -> tuple[str, int]:
    """The key id a binary envelope names, and where its header ends."""
    if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + 1:
        raise CryptoError("not an llmdocs envelope (or an unknown version of it)")
    length = sealed[len(MAGIC)]
    end = len(MAGIC) + 1 + length
    try:
        return sealed[len(MAGIC) + 1:end].decode(), end
    except UnicodeDecodeError:
        raise CryptoError("an envelope's key id is not text") from None


def open_text(ring: KeyRing | None, value: str, context: str = "") -> str:
    """As `KeyRing.open_text`, saying clearly when a record is sealed but no ring is set."""
    if ring is None:
        if value.startswith(TEXT_PREFIX):
            key_id = value[len(TEXT_PREFIX):].partition(":")[0]
            raise UnknownKey(key_id)
        return value
    return ring.open_text(value, context)


def open_bytes(ring: KeyRing | None, value: bytes) -> bytes:
    """`value` decrypted, or as it is when it was stored before encryption."""
    if not is_sealed(value):
        return value
    if ring is None:
        raise UnknownKey(key_id_of(value)[0])
    return ring.open(value)


def generated_keys(data_dir: Path, create: bool = True) -> dict[str, bytes]:
    """Embedded mode's keys for secrets kept always encrypted: made once, kept private
    (none when absent and not to be made)."""
    path = data_dir / GENERATED_RING
    if not path.exists():
        if not create:
            return {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps({"generated-1": new_key()}))
    return parse_ring(str(path))


def derived_keys(jwt_secret: str) -> dict[str, bytes]:
    """Distributed mode's key for secrets when no ring is set: derived from the JWT
    secret every replica already shares, so a deployment needs no second secret."""
    return {DERIVED_KEY_ID: HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                                 info=b"llmdocs secrets ring v1").derive(jwt_secret.encode())}
