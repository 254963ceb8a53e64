"""Key material: generation, sealing under the key-encryption key, public JWKs.

Private keys are sealed with AES-256-GCM; the kid and alg are bound in as associated
data, so a sealed blob cannot be moved onto another key row unnoticed.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, RSAKey

from idp.store.base import KeyRecord

SigningKey = RSAKey | ECKey
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


MIN_IMPORT_RSA_BITS = 2048


class KeyMaterialError(Exception):
    """A sealed private key could not be opened (wrong key-encryption key, or tampering)."""


class KeyImportError(Exception):
    """A PEM file cannot become a signing key for the algorithm asked (the message says why)."""


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


def _open_pem(record: KeyRecord, key_encryption_key: bytes) -> bytes:
    """The private key's PEM; KeyMaterialError if the seal does not authenticate."""
    sealed = record.private_key_sealed
    if not sealed or sealed[:1] != _SEAL_VERSION:
        raise KeyMaterialError(f"key {record.kid} has no private part")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key_encryption_key).decrypt(nonce, ciphertext, _aad(record.kid, record.alg))
    except (InvalidTag, ValueError):
        # ValueError: an empty or malformed key-encryption key opens nothing either.
        raise KeyMaterialError(
            f"key {record.kid} cannot be decrypted: the key-encryption key does not match"
        ) from None


def opens(record: KeyRecord, key_encryption_key: bytes) -> bool:
    """Whether the key-encryption key authenticates this key's seal (no key is parsed)."""
    try:
        _open_pem(record, key_encryption_key)
    except KeyMaterialError:
        return False
    return True


def reseal(record: KeyRecord, old_key: bytes, new_key: bytes) -> KeyRecord:
    """The same key row with its private part sealed under ``new_key`` instead of ``old_key``."""
    pem = _open_pem(record, old_key)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(new_key).encrypt(nonce, pem, _aad(record.kid, record.alg))
    return replace(record, private_key_sealed=_SEAL_VERSION + nonce + sealed)


def unseal(record: KeyRecord, key_encryption_key: bytes) -> SigningKey:
    """Open a sealed private key; raise KeyMaterialError if it cannot be authenticated."""
    pem = _open_pem(record, key_encryption_key)
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


def load_private_pem(alg: str, pem: bytes) -> SigningKey:
    """An unencrypted PKCS#8 or traditional PEM private key that fits ``alg`` (RFC 7518 3.1).

    RS256 takes an RSA key of at least 2048 bits, ES256 a P-256 key; public-only and
    encrypted PEMs are refused.
    """
    if b"-----BEGIN" not in pem:
        raise KeyImportError("not a PEM file (no -----BEGIN line)")
    if b"ENCRYPTED" in pem:
        raise KeyImportError(
            "the PEM private key is encrypted; decrypt it first "
            "(openssl pkey -in key.pem -out plain.pem)"
        )
    if b"PRIVATE KEY-----" not in pem:
        if b"PUBLIC KEY-----" in pem or b"CERTIFICATE-----" in pem:
            raise KeyImportError("the PEM holds no private key (public key or certificate only)")
        raise KeyImportError("the PEM holds no private key")
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise KeyImportError("the PEM private key is encrypted; decrypt it first") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyImportError("the PEM private key cannot be read") from None
    if alg == "RS256":
        if not isinstance(private, rsa.RSAPrivateKey):
            raise KeyImportError(f"RS256 needs an RSA key, the PEM holds {_kind(private)}")
        if private.key_size < MIN_IMPORT_RSA_BITS:
            raise KeyImportError(
                f"RS256 needs an RSA key of at least {MIN_IMPORT_RSA_BITS} bits, "
                f"this one has {private.key_size}"
            )
    elif alg == "ES256":
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise KeyImportError(f"ES256 needs a P-256 EC key, the PEM holds {_kind(private)}")
        if not isinstance(private.curve, ec.SECP256R1):
            raise KeyImportError(f"ES256 needs a P-256 EC key, this one is on {private.curve.name}")
    else:
        raise KeyImportError(f"unsupported signing algorithm {alg!r}")
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return RSAKey.import_key(pkcs8) if alg == "RS256" else ECKey.import_key(pkcs8)


def _kind(private: object) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        return "an RSA key"
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return f"an EC key on {private.curve.name}"
    return f"a {type(private).__name__.removeprefix('_')} key"


def imported_key_record(alg: str, pem: bytes, key_encryption_key: bytes, now: float) -> KeyRecord:
    """An operator's PEM private key as a ``next`` row, sealed under the key-encryption key."""
    key = load_private_pem(alg, pem)
    kid = key_id(key)
    return KeyRecord(
        kid=kid,
        alg=alg,
        state="next",
        public_jwk=json.dumps(public_jwk(key, kid, alg), separators=(",", ":")),
        private_key_sealed=seal(key, kid, alg, key_encryption_key),
        created_at=now,
    )
