"""Key material: generation, sealing under the key-encryption key, public JWKs.

Private keys are sealed with AES-256-GCM; the kid and alg are bound in as associated
data, so a sealed blob cannot be moved onto another key row unnoticed.
"""

from __future__ import annotations

import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, RSAKey

from idp.store.base import KeyRecord

SigningKey = RSAKey | ECKey
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


class KeyMaterialError(Exception):
    """A sealed private key could not be opened (wrong key-encryption key, or tampering)."""


def generate_key(alg: str, rsa_bits: int) -> SigningKey:
    """A fresh private key for a JWS algorithm (RFC 7518 section 3.1)."""
    if alg == "RS256":
        return RSAKey.generate_key(rsa_bits, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def key_id(key: SigningKey) -> str:
    """The kid: the key's JWK thumbprint (RFC 7638), stable and unique per key."""
    return key.thumbprint()


def public_jwk(key: SigningKey, kid: str, alg: str) -> dict[str, object]:
    """The public half as a JWK (RFC 7517 section 4) with kid, alg and use=sig."""
    members: dict[str, object] = dict(key.as_dict(private=False))
    members.update({"kid": kid, "alg": alg, "use": "sig"})
    return {name: members[name] for name in sorted(members)}


def _aad(kid: str, alg: str) -> bytes:
    return f"idp-signing-key:{alg}:{kid}".encode()


def seal(key: SigningKey, kid: str, alg: str, key_encryption_key: bytes) -> bytes:
    """Encrypt the private key (PKCS#8 PEM) under the key-encryption key."""
    nonce = os.urandom(_NONCE_BYTES)
    pem = key.as_pem(private=True)
    return _SEAL_VERSION + nonce + AESGCM(key_encryption_key).encrypt(nonce, pem, _aad(kid, alg))


def unseal(record: KeyRecord, key_encryption_key: bytes) -> SigningKey:
    """Open a sealed private key; raise KeyMaterialError if it cannot be authenticated."""
    sealed = record.private_key_sealed
    if not sealed or sealed[:1] != _SEAL_VERSION:
        raise KeyMaterialError(f"key {record.kid} has no private part")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        pem = AESGCM(key_encryption_key).decrypt(nonce, ciphertext, _aad(record.kid, record.alg))
    except InvalidTag:
        raise KeyMaterialError(
            f"key {record.kid} cannot be decrypted: the key-encryption key does not match"
        ) from None
    if record.alg == "RS256":
        return RSAKey.import_key(pem)
    return ECKey.import_key(pem)


def new_key_record(
    alg: str, rsa_bits: int, key_encryption_key: bytes, state: str, now: float
) -> KeyRecord:
    """Generate a key and return it as a row ready to insert."""
    key = generate_key(alg, rsa_bits)
    kid = key_id(key)
    return KeyRecord(
        kid=kid,
        alg=alg,
        state=state,
        public_jwk=json.dumps(public_jwk(key, kid, alg), separators=(",", ":")),
        private_key_sealed=seal(key, kid, alg, key_encryption_key),
        created_at=now,
        activated_at=now if state == "active" else None,
    )
