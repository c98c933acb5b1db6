"""Provider tokens encrypted at rest: AES-256-GCM under a key named in the sealed text, so keys can rotate.

A sealed value reads `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: a fresh random 96-bit nonce per
seal, the JSON of the secrets as plaintext, and the prefix (plus an optional caller `context`, such as a
connection id, so a sealed value cannot be moved to another record) as associated data. The key id is a
fingerprint of the key, not the key, so rotating needs no id bookkeeping: list the old key among
`old_keys`, seal with the new primary, and values sealed under either still open.

Configuration: PRESSROOM_TOKEN_KEY is 32 random bytes in base64 (`openssl rand -base64 32`); any other
text is stretched with HKDF-SHA256. Without it, the key is derived from PRESSROOM_SECRET_KEY with HKDF
(info "pressroom-tokens"), so it changes if the secret key does: list the old secret among the old keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
HKDF_INFO = b"pressroom-tokens"
_URLSAFE = str.maketrans("-_", "+/")


def derive_key(material: bytes | str) -> bytes:
    """The 32-byte AES key for configured key material: raw 32 bytes or base64 of them as they are,
    anything else (a passphrase, PRESSROOM_SECRET_KEY) through HKDF-SHA256 with info "pressroom-tokens"."""
    if isinstance(material, str):
        raw = _base64_key(material.strip())
        if raw is not None:
            return raw
        material = material.encode()
    if len(material) == KEY_BYTES:
        return material
    if not material:
        raise ValueError("a token key cannot be empty")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=HKDF_INFO).derive(material)


def key_id(key: bytes) -> str:
    """A short public fingerprint of a derived key (not reversible to it)."""
    return hashlib.sha256(b"pressroom-token-key-id\x00" + key).hexdigest()[:8]


class TokenCipher:
    """Seals with `key`; opens what `key` or any of `old_keys` sealed."""

    def __init__(self, key: bytes | str, *, old_keys: Iterable[bytes | str] = ()) -> None:
        primary = derive_key(key)
        self._kid = key_id(primary)
        self._primary = AESGCM(primary)
        self._keys: dict[str, list[AESGCM]] = {self._kid: [self._primary]}
        seen = {primary}
        for material in old_keys:
            derived = derive_key(material)
            if derived not in seen:
                seen.add(derived)
                self._keys.setdefault(key_id(derived), []).append(AESGCM(derived))

    @classmethod
    def from_config(cls, token_key: str | None, secret_key: str | None, *, old_keys: Iterable[str] = ()) -> TokenCipher:
        """PRESSROOM_TOKEN_KEY if set, else a key derived from PRESSROOM_SECRET_KEY."""
        key = token_key or secret_key
        if not key:
            raise ValueError("PRESSROOM_TOKEN_KEY or PRESSROOM_SECRET_KEY must be set to encrypt provider tokens")
        return cls(key, old_keys=old_keys)

    @property
    def key_id(self) -> str:
        return self._kid

    def seal(self, secrets: dict[str, str], *, context: str = "") -> str:
        prefix = f"{FORMAT}.{self._kid}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._primary.encrypt(nonce, msgspec.json.encode(secrets), _associated(prefix, context))
        return f"{prefix}.{base64.urlsafe_b64encode(nonce + sealed).rstrip(b'=').decode()}"

    def open(self, sealed: str, *, context: str = "") -> dict[str, str]:
        version, kid, body = _split(sealed)
        keys = self._keys.get(kid)
        if keys is None:
            raise UnknownTokenKey(f"sealed with key {kid}, which is not among the configured token keys")
        blob = _unbase64(body)
        if len(blob) < NONCE_BYTES + 16:
            raise TamperedToken("sealed token is truncated")
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        for aes in keys:
            try:
                plain = aes.decrypt(nonce, ciphertext, _associated(f"{version}.{kid}", context))
            except InvalidTag:
                continue
            return msgspec.json.decode(plain, type=dict[str, str])
        raise TamperedToken("sealed token failed authentication: altered, or sealed for another context")


def _associated(prefix: str, context: str) -> bytes:
    return prefix.encode() + b"\x00" + context.encode()


def _split(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".")
    if len(parts) != 3 or parts[0] != FORMAT or not parts[1] or not parts[2]:
        raise TamperedToken(f"not a sealed token of format {FORMAT}")
    return parts[0], parts[1], parts[2]


def _unbase64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TamperedToken("sealed token is not valid base64") from None


def _base64_key(text: str) -> bytes | None:
    """32 bytes if `text` is their standard or URL-safe base64 (padding optional), else None."""
    if len(text) not in (43, 44):
        return None
    try:
        raw = base64.b64decode(text.translate(_URLSAFE) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


class SealedTokenError(ValueError):
    """A sealed token that cannot be opened."""


class TamperedToken(SealedTokenError):
    """The sealed text was altered, truncated, or sealed for another context."""


class UnknownTokenKey(SealedTokenError):
    """Sealed under a key this process is not configured with (rotated out, or another deployment's)."""
