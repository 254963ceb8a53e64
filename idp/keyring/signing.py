"""Compact JWS signing with one prepared object per key (RFC 7515 section 7.1).

A key signs many tokens with few distinct headers, so each signer keeps the base64url of
its protected header per ``typ``, and the hash and padding objects of its algorithm, and
calls ``cryptography`` directly. The bytes are those joserfc produces for the same header
and claims: header members ``typ``, ``alg``, ``kid`` in that order, ASCII-escaped JSON;
claims as compact UTF-8 JSON; base64url without padding (RFC 7515 section 2).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from idp.keyring.material import SigningKey

ES256_COORDINATE_BYTES = 32


def b64url(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def protected_header(alg: str, kid: str, typ: str) -> bytes:
    """The encoded protected header of our tokens, member order as joserfc writes it."""
    header = {"typ": typ, "alg": alg, "kid": kid}
    return b64url(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii"))


def claims_bytes(claims: dict[str, Any]) -> bytes:
    """The JWT claims set as compact UTF-8 JSON (RFC 7519 section 7.1, step 1).

    orjson writes what ``json.dumps(claims, ensure_ascii=False, separators=(",", ":"))``
    writes for the strings, integers, lists and booleans claims hold, several times faster.
    """
    return orjson.dumps(claims)


class JwsSigner:
    """Signs compact JWSs with one private key: RS256 (RSASSA-PKCS1-v1_5 with SHA-256,
    RFC 7518 section 3.3) or ES256 (ECDSA P-256 with SHA-256, RFC 7518 section 3.4)."""

    def __init__(self, alg: str, kid: str, key: SigningKey) -> None:
        private = key.private_key
        if alg == "RS256" and isinstance(private, rsa.RSAPrivateKey):
            self._rsa: rsa.RSAPrivateKey | None = private
            self._ec: ec.EllipticCurvePrivateKey | None = None
        elif (
            alg == "ES256"
            and isinstance(private, ec.EllipticCurvePrivateKey)
            and isinstance(private.curve, ec.SECP256R1)
        ):
            self._rsa, self._ec = None, private
        else:
            raise ValueError(f"key {kid} cannot sign {alg}")
        self.alg = alg
        self.kid = kid
        self._headers: dict[str, bytes] = {}
        self._sha256 = hashes.SHA256()
        self._pkcs1v15 = padding.PKCS1v15()
        self._ecdsa = ec.ECDSA(self._sha256)

    def sign(self, typ: str, claims: dict[str, Any]) -> str:
        """The compact JWS of ``claims`` under the header ``{typ, alg, kid}``."""
        header = self._headers.get(typ)
        if header is None:
            header = self._headers.setdefault(typ, protected_header(self.alg, self.kid, typ))
        signing_input = header + b"." + b64url(claims_bytes(claims))
        return (signing_input + b"." + b64url(self._signature(signing_input))).decode("ascii")

    def _signature(self, signing_input: bytes) -> bytes:
        if self._rsa is not None:
            return self._rsa.sign(signing_input, self._pkcs1v15, self._sha256)
        assert self._ec is not None
        # ECDSA gives DER; JWS wants R and S as two fixed-width big-endian integers.
        r, s = decode_dss_signature(self._ec.sign(signing_input, self._ecdsa))
        return r.to_bytes(ES256_COORDINATE_BYTES, "big") + s.to_bytes(ES256_COORDINATE_BYTES, "big")
