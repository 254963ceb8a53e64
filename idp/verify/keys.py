"""A JWK Set (RFC 7517 section 5) turned into verification keys, one per kid.

Keys are imported (and validated) by joserfc once per fetch and kept next to the algorithm
that may use them and a prepared cryptography call, so verifying a token costs a
dictionary lookup and one call into OpenSSL.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from idp.verify.errors import InvalidToken

# Asymmetric JWS algorithms (RFC 7518 section 3.1) and the key type each needs. "none" and
# the HS* family are absent on purpose: a public key must never serve as an HMAC secret.
KEY_TYPES: Mapping[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
}
_PUBLIC_MEMBERS = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y")}
MIN_RSA_BITS = 2048

logger = logging.getLogger("idp.verify")


class KeySetError(ValueError):
    """The document is not a JWK Set at all."""


SignatureCheck = Callable[[bytes, bytes], None]


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key, the single algorithm its JWK names, and its prepared signature check."""

    kid: str
    alg: str
    key: RSAKey | ECKey
    check: SignatureCheck = field(repr=False, compare=False)

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Check a JWS signature (RFC 7515 section 5.2 step 8); raise InvalidToken if wrong."""
        try:
            self.check(signature, signing_input)
        except InvalidSignature:
            raise InvalidToken("the token signature is invalid") from None


_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def signature_check(alg: str, key: RSAKey | ECKey) -> SignatureCheck:
    """The cryptography call that verifies ``alg`` signatures under ``key`` (RFC 7518 3.3-3.5).

    Built once per key with its padding and hash objects ready, so that a verification is
    one call into OpenSSL (joserfc's algorithm models rebuild them on every call). Raises
    InvalidSignature for a wrong signature.
    """
    digest = _HASHES[alg[2:]]
    public = key.public_key
    if isinstance(public, rsa.RSAPublicKey):
        scheme: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        return lambda signature, message: public.verify(signature, message, scheme, digest)
    if isinstance(public, ec.EllipticCurvePublicKey):
        ecdsa, size = ec.ECDSA(digest), (public.key_size + 7) // 8

        def check_ecdsa(signature: bytes, message: bytes) -> None:
            # RFC 7518 section 3.4: R and S as fixed-length big-endian integers, concatenated.
            if len(signature) != 2 * size:
                raise InvalidSignature()
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public.verify(encode_dss_signature(r, s), message, ecdsa)

        return check_ecdsa
    raise ValueError(f"no signature check for {alg}")


def import_key_set(document: Any, algorithms: frozenset[str]) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set by kid (RFC 7517 section 5).

    A key is usable when it has a ``kid``, an ``alg`` among ``algorithms`` that fits its
    ``kty`` (and curve), ``use`` absent or ``sig``, ``key_ops`` absent or holding ``verify``,
    and, for RSA, at least 2048 bits. Other keys are skipped, not fatal: a set may hold keys
    for other purposes. Only public members are read. A kid that appears twice is dropped,
    since it could not say which key signed.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetError("the JWKS document has no 'keys' array")
    found: dict[str, VerificationKey] = {}
    duplicated: set[str] = set()
    for member in document["keys"]:
        key = _import_one(member, algorithms)
        if key is None:
            continue
        if key.kid in found or key.kid in duplicated:
            duplicated.add(key.kid)
            found.pop(key.kid, None)
            continue
        found[key.kid] = key
    if duplicated:
        logger.warning(
            "JWKS lists %d kid(s) more than once; those keys are ignored", len(duplicated)
        )
    return found


def _import_one(member: Any, algorithms: frozenset[str]) -> VerificationKey | None:
    if not isinstance(member, dict):
        return None
    kid, alg = member.get("kid"), member.get("alg")
    if not isinstance(kid, str) or not kid or not isinstance(alg, str) or alg not in algorithms:
        return None
    kty = KEY_TYPES[alg]
    if member.get("kty") != kty:
        return None
    if member.get("use", "sig") != "sig":
        return None
    key_ops = member.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    public = {name: member[name] for name in _PUBLIC_MEMBERS[kty] if name in member}
    if kty == "RSA" and _modulus_bits(public.get("n")) < MIN_RSA_BITS:
        return None
    try:
        key: RSAKey | ECKey = (
            RSAKey.import_key(public) if kty == "RSA" else ECKey.import_key(public)
        )
        JWSRegistry.algorithms[alg].check_key(key)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return VerificationKey(kid=kid, alg=alg, key=key, check=signature_check(alg, key))


def _modulus_bits(n: Any) -> int:
    """Bits of a base64url RSA modulus (RFC 7518 section 6.3.1.1); 0 if unreadable."""
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (ValueError, binascii.Error):
        return 0
    return int.from_bytes(raw, "big").bit_length()
