"""DPoP proofs (RFC 9449): checking a proof JWT, and the key thumbprint tokens are bound to.

A client proves possession of a key pair by signing a short-lived JWT (the proof) for each
request, with the public key in its header. :func:`check_proof` makes the checks of section
4.3 that need nothing but the proof and the request; the single use of a proof (its ``jti``,
section 11.1) is the caller's (:class:`ReplayCache` for a resource server; the IdP records
proofs in its store) and so is a server nonce (section 8). A token bound to the key carries
the key's RFC 7638 thumbprint as ``cnf.jkt`` (section 6.1). The IdP applies the same rules
(``idp.oauth.dpop``), so it and its resource servers agree on what a valid proof is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from idp.verify.errors import InvalidDpopProof

DPOP_TYP = "dpop+jwt"
DPOP_ALGS = ("ES256", "RS256", "PS256", "EdDSA")
"""The proof algorithms accepted (and advertised as dpop_signing_alg_values_supported)."""
MAX_PROOF_LENGTH = 8192
MIN_RSA_BITS = 2048
# JWK members that hold private or symmetric key material (RFC 7518 section 6, RFC 8037).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
# RFC 7638 section 3.2 (EC, RSA) and RFC 8037 section 2 (OKP): the members a thumbprint hashes.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHA256 = hashes.SHA256()

PublicKey = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


@dataclass(frozen=True, slots=True)
class DpopProof:
    """A proof that passed every check of RFC 9449 section 4.3 that needs no state."""

    jkt: str
    """The RFC 7638 thumbprint of the proof's public key: what a bound token names."""
    jti: str
    issued_at: float
    nonce: str | None


def only_proof(values: Sequence[str]) -> str | None:
    """The one ``DPoP`` header of a request, or None; more than one is refused (section 4.3,
    check 1)."""
    if len(values) > 1:
        raise InvalidDpopProof("more than one DPoP header")
    return values[0] if values else None


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidDpopProof("the DPoP proof is not valid base64url") from None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 (section 3) SHA-256 thumbprint of a public JWK, base64url-encoded.

    The required members of the key type, in lexicographic order, as JSON without
    whitespace; OKP keys (Ed25519, Ed448) hash ``crv``, ``kty`` and ``x`` (RFC 8037 section 2).
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(name), str) for name in members):
        raise InvalidDpopProof("the DPoP proof key is not a supported public JWK")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(access_token: str) -> str:
    """The ``ath`` of a proof sent with ``access_token``: base64url SHA-256 of its ASCII
    (RFC 9449 section 4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def normalized_htu(url: str) -> str | None:
    """``url`` without query and fragment, normalised for comparison (section 4.3, check 9).

    RFC 3986 sections 6.2.2 and 6.2.3: scheme and host compared case-insensitively, a default
    port is the same as none, an empty path is ``/``. None when ``url`` is not an absolute
    http(s) URI.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    max_age: float,
    leeway: float,
    access_token: str | None = None,
) -> DpopProof:
    """The checked proof of one request, or InvalidDpopProof (RFC 9449 section 4.3).

    In the order of section 4.3: a compact JWS (check 2) whose header has ``typ`` dpop+jwt
    (4), an accepted asymmetric ``alg`` (5) and a public ``jwk`` without private members (7),
    with a signature that verifies under that key (6); claims ``jti``, ``htm``, ``htu`` and
    ``iat`` present (3); ``htm`` the request method (8); ``htu`` the request URI without query
    and fragment (9); ``iat`` no older than ``max_age`` and not in the future, each with
    ``leeway`` seconds (11); and, when an access token comes with the request, ``ath`` its
    hash (12, section 4.2). Replay (the ``jti``) and the nonce (10) are the caller's.
    """
    if len(proof) > MAX_PROOF_LENGTH or _COMPACT.fullmatch(proof) is None:
        raise InvalidDpopProof("the DPoP proof is not a compact JWS")
    encoded_header, encoded_claims, encoded_signature = proof.split(".")
    header = _json_object(encoded_header, "header")
    alg = _check_header(header)
    jwk = _check_jwk(header["jwk"])
    key = public_key(jwk, alg)
    signing_input = f"{encoded_header}.{encoded_claims}".encode("ascii")
    verify_signature(key, alg, _b64decode(encoded_signature), signing_input)
    claims = _json_object(encoded_claims, "payload")
    jti, issued_at, nonce = _check_claims(claims, method, url)
    if not now - max_age - leeway <= issued_at <= now + leeway:
        raise InvalidDpopProof("the DPoP proof is too old or issued in the future (iat)")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode("ascii", "replace"), access_token_hash(access_token).encode("ascii")
        ):
            raise InvalidDpopProof("the DPoP proof's ath does not match the access token")
    return DpopProof(jkt=jwk_thumbprint(jwk), jti=jti, issued_at=issued_at, nonce=nonce)


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidDpopProof(f"the DPoP proof {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidDpopProof(f"the DPoP proof {what} is not a JSON object")
    return value


def _check_header(header: Mapping[str, Any]) -> str:
    """The proof's ``alg``, once ``typ`` and ``alg`` are right (section 4.3, checks 4-5)."""
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != DPOP_TYP:
        raise InvalidDpopProof("the DPoP proof's typ is not dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in DPOP_ALGS:
        raise InvalidDpopProof(f"the DPoP proof's alg must be one of {', '.join(DPOP_ALGS)}")
    return alg


def _check_jwk(jwk: Any) -> Mapping[str, Any]:
    """The header's ``jwk``: an object holding no private key (section 4.3, check 7)."""
    if not isinstance(jwk, dict):
        raise InvalidDpopProof("the DPoP proof header has no jwk")
    if any(name in jwk for name in _PRIVATE_MEMBERS):
        raise InvalidDpopProof("the DPoP proof's jwk contains a private key")
    return jwk


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidDpopProof(f"the DPoP proof's jwk has no valid {name}")
    return _b64decode(value)


def public_key(jwk: Mapping[str, Any], alg: str) -> PublicKey:
    """The public key of ``jwk`` for ``alg``: P-256 for ES256, RSA of at least 2048 bits for
    RS256 and PS256, Ed25519 or Ed448 for EdDSA (RFC 7518 section 6, RFC 8037 section 2)."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if alg == "ES256" and kty == "EC" and crv == "P-256":
            x, y = _member(jwk, "x"), _member(jwk, "y")
            if len(x) != 32 or len(y) != 32:
                raise InvalidDpopProof("the DPoP proof's jwk is not a P-256 key")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return numbers.public_key()
        if alg in ("RS256", "PS256") and kty == "RSA":
            n = int.from_bytes(_member(jwk, "n"), "big")
            e = int.from_bytes(_member(jwk, "e"), "big")
            rsa_key = rsa.RSAPublicNumbers(e, n).public_key()
            if rsa_key.key_size < MIN_RSA_BITS:
                raise InvalidDpopProof("the DPoP proof's RSA key is shorter than 2048 bits")
            return rsa_key
        if alg == "EdDSA" and kty == "OKP" and crv == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_member(jwk, "x"))
        if alg == "EdDSA" and kty == "OKP" and crv == "Ed448":
            return ed448.Ed448PublicKey.from_public_bytes(_member(jwk, "x"))
    except ValueError:
        raise InvalidDpopProof("the DPoP proof's jwk is not a valid public key") from None
    raise InvalidDpopProof(f"the DPoP proof's jwk is not a key for {alg}")


def verify_signature(key: PublicKey, alg: str, signature: bytes, signing_input: bytes) -> None:
    """Verify the JWS signature (RFC 7518 sections 3.3-3.5, RFC 8037 section 3.1), or refuse
    the proof (section 4.3, check 6)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(_SHA256))
        elif isinstance(key, rsa.RSAPublicKey):
            scheme: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=32)
                if alg == "PS256"
                else padding.PKCS1v15()
            )
            key.verify(signature, signing_input, scheme, _SHA256)
        else:
            key.verify(signature, signing_input)
    except InvalidSignature:
        raise InvalidDpopProof("the DPoP proof's signature does not verify") from None


def _check_claims(
    claims: Mapping[str, Any], method: str, url: str
) -> tuple[str, float, str | None]:
    """``jti``, ``iat`` and ``nonce`` of claims naming this request (checks 3, 8 and 9)."""
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidDpopProof("the DPoP proof has no valid jti")
    if not isinstance(htm, str) or not isinstance(htu, str):
        raise InvalidDpopProof("the DPoP proof has no valid htm or htu")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidDpopProof("the DPoP proof has no valid iat")
    if htm != method:
        raise InvalidDpopProof("the DPoP proof's htm does not match the request method")
    expected = normalized_htu(url)
    if expected is None or normalized_htu(htu) != expected:
        raise InvalidDpopProof("the DPoP proof's htu does not match the request URI")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDpopProof("the DPoP proof's nonce is not a string")
    return jti, float(iat), nonce


def bound_key(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint of the key a token is bound to (``cnf.jkt``, RFC 9449 section 6.1)."""
    confirmation = claims.get("cnf")
    if not isinstance(confirmation, dict):
        return None
    jkt = confirmation.get("jkt")
    return jkt if isinstance(jkt, str) and jkt else None


DEFAULT_REPLAY_CAPACITY = 100_000


class ReplayCache:
    """The proofs a resource server has accepted, in memory, until they are too old anyway.

    Bounded: it holds at most ``capacity`` proofs (with 100,000, some 10 MB). Expired proofs
    are dropped first; when it is still full, a new proof is refused rather than an
    unexpired one forgotten, so a replay is never let through (the client retries with a new
    proof once old ones expire). It protects one process: replicas of a resource server each
    have their own, so a proof replayed to another replica within its lifetime is not seen
    (use the access token's short lifetime and nonces to narrow that, or a shared store).
    """

    def __init__(self, capacity: int = DEFAULT_REPLAY_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def accept(self, proof: DpopProof, expires_at: float, now: float) -> None:
        """Record ``proof`` until ``expires_at``, or refuse it: seen already, or no room."""
        key = f"{proof.jkt}:{proof.jti}"
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and seen > now:
                raise InvalidDpopProof("the DPoP proof has already been used")
            if len(self._seen) >= self.capacity:
                self._drop_expired(now)
            if len(self._seen) >= self.capacity:
                raise InvalidDpopProof("too many recent DPoP proofs; retry with a new one")
            self._seen[key] = expires_at
            self._seen.move_to_end(key)

    def _drop_expired(self, now: float) -> None:
        expired = [key for key, until in self._seen.items() if until <= now]
        for key in expired:
            del self._seen[key]


# -- server nonces (section 8 for authorization servers, section 9 for resource servers) ---

_DERIVATION_LABEL = b"idp dpop nonce v1"


class DpopNonces:
    """Issues and checks the nonces of one deployment (RFC 9449 section 8)."""

    def __init__(self, secret: bytes, lifetime: int) -> None:
        """``secret`` is shared by every replica; ``lifetime`` is the slot length in seconds."""
        self._key = hmac.new(secret, _DERIVATION_LABEL, hashlib.sha256).digest()
        self.lifetime = max(1, lifetime)

    def _for_slot(self, slot: int) -> str:
        digest = hmac.new(self._key, slot.to_bytes(8, "big", signed=True), hashlib.sha256)
        return b64url(digest.digest()[:18])

    def current(self, now: float) -> str:
        """The nonce to hand out at ``now`` (the ``DPoP-Nonce`` header, section 8.1)."""
        return self._for_slot(int(now // self.lifetime))

    def accepts(self, nonce: str | None, now: float) -> bool:
        """Whether ``nonce`` is the current slot's or the previous one's."""
        if not nonce:
            return False
        slot = int(now // self.lifetime)
        given = nonce.encode("ascii", "replace")
        return any(
            hmac.compare_digest(given, self._for_slot(s).encode("ascii")) for s in (slot, slot - 1)
        )
