"""client_secret_jwt: the client's secret as the HMAC key of its assertions (RFC 7523 section
2.2, OpenID Connect Core 1.0 section 9).

The store keeps only the SHA-256 of a client secret, which cannot key an HMAC; so for a
client registered with this method, and only for it, the secret itself is kept as well,
sealed with AES-256-GCM under the key-encryption key, the client id bound in as associated
data (as TOTP secrets and signing keys are), so a sealed secret cannot be moved onto another
client unnoticed. ``idp keys rewrap`` seals it anew under a new key-encryption key.

The assertion's claims and single use are checked as for private_key_jwt
(:mod:`idp.oauth.client_assertion`); only the signature differs: HS256, keyed with the UTF-8
octets of the secret (OpenID Connect Core 1.0 section 16.19).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.store.base import ClientRecord

CLIENT_SECRET_JWT = "client_secret_jwt"
HMAC_ALGS = frozenset({"HS256"})
"""The one HMAC algorithm accepted: HS384, HS512 and ``none`` are refused."""
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


def _aad(client_id: str) -> bytes:
    return f"idp-client-secret:{client_id}".encode()


def seal_client_secret(secret: str, client_id: str, key_encryption_key: bytes) -> bytes:
    """The secret encrypted under the key-encryption key (AES-256-GCM, client id bound)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key_encryption_key).encrypt(nonce, secret.encode(), _aad(client_id))
    return _SEAL_VERSION + nonce + sealed


def open_client_secret(client: ClientRecord, key_encryption_key: bytes) -> bytes | None:
    """The client's secret (UTF-8 octets); None when it has none sealed or the seal does not
    open under this key."""
    sealed = client.secret_sealed
    if not sealed or sealed[:1] != _SEAL_VERSION or not key_encryption_key:
        return None
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key_encryption_key).decrypt(nonce, ciphertext, _aad(client.client_id))
    except (InvalidTag, ValueError):
        return None


def resealed_client_secret(client: ClientRecord, old_key: bytes, new_key: bytes) -> bytes | None:
    """The client's secret sealed under ``new_key`` instead of ``old_key``; None when
    ``old_key`` does not open it (already resealed, or none sealed)."""
    secret = open_client_secret(client, old_key)
    if secret is None:
        return None
    return seal_client_secret(secret.decode(), client.client_id, new_key)


def hs256_matches(secret: bytes, signing_input: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the HS256 MAC of ``signing_input`` under ``secret``
    (RFC 7518 section 3.2), compared in constant time."""
    expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return hmac.compare_digest(expected, signature)
