"""DPoP proofs for tests (RFC 9449 section 4), made with ``cryptography`` directly.

A :class:`DpopKey` is a client's key pair; :meth:`DpopKey.proof` signs a proof for one
request, and every part of it can be spoiled on purpose (typ, alg, claims, header).
The thumbprint is computed here by hand (RFC 7638), not with the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_SHA256 = hashes.SHA256()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int(value: int, size: int | None = None) -> str:
    length = size or max(1, (value.bit_length() + 7) // 8)
    return b64(value.to_bytes(length, "big"))


def ath(access_token: str) -> str:
    """The proof's ``ath`` for ``access_token`` (RFC 9449 section 4.2)."""
    return b64(hashlib.sha256(access_token.encode("ascii")).digest())


class DpopKey:
    """A client's DPoP key pair of one algorithm: ES256, RS256, PS256 or EdDSA (Ed25519)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private: Any
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": _int(numbers.x, 32),
                "y": _int(numbers.y, 32),
            }
        elif alg in ("RS256", "PS256"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes_raw()
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        else:
            raise ValueError(alg)

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint, computed by hand."""
        required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}.get(
            self.jwk["kty"], ("crv", "kty", "x")
        )
        canonical = json.dumps({k: self.jwk[k] for k in required}, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())

    def sign(self, signing_input: bytes) -> bytes:
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(_SHA256)))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "RS256":
            return bytes(self.private.sign(signing_input, padding.PKCS1v15(), _SHA256))
        if self.alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=32)
            return bytes(self.private.sign(signing_input, pss, _SHA256))
        return bytes(self.private.sign(signing_input))

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """A proof for ``method`` and ``url``; ``header`` and ``claims`` override members,
        ``drop`` removes claims."""
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}
        head.update(header or {})
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(12),
            "htm": method,
            "htu": url,
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        encoded = [b64(json.dumps(part).encode()) for part in (head, body)]
        signing_input = ".".join(encoded).encode("ascii")
        return f"{signing_input.decode()}.{b64(self.sign(signing_input))}"


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the tests verify signatures separately)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded
