"""DPoP proofs at the IdP (RFC 9449): the checks of :mod:`idp.verify.dpop`, refused with the
token endpoint's protocol error.

A client proves possession of a key pair by signing a short-lived JWT (the proof) for each
request, with the public key in its header. The checks of section 4.3 that need nothing but
the proof and the request are the verifier library's, so the IdP and the resource servers
that use :mod:`idp.verify` agree on what a valid proof is; here a refusal becomes the OAuth
error ``invalid_dpop_proof`` (section 5). The single use of a proof (its ``jti``, section
11.1) and the server nonce (section 8) are the callers' (see :mod:`idp.oauth.dpop_proofs`
and :mod:`idp.oauth.dpop_nonce`). A token bound to the key carries the key's RFC 7638
thumbprint as ``cnf.jkt`` (section 6.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from idp.oauth.errors import InvalidDpopProof
from idp.verify import dpop as rules
from idp.verify.dpop import (
    DPOP_ALGS,
    DPOP_TYP,
    DpopProof,
    access_token_hash,
    b64url,
    normalized_htu,
)
from idp.verify.errors import InvalidDpopProof as RefusedProof

__all__ = [
    "DPOP_ALGS",
    "DPOP_TYP",
    "DpopProof",
    "access_token_hash",
    "b64url",
    "check_proof",
    "jwk_thumbprint",
    "normalized_htu",
    "only_proof",
]


def only_proof(values: Sequence[str]) -> str | None:
    """The one ``DPoP`` header of a request, or None; more than one is refused (section 4.3,
    check 1)."""
    if len(values) > 1:
        raise InvalidDpopProof("more than one DPoP header")
    return values[0] if values else None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 (section 3) SHA-256 thumbprint of a public JWK, base64url-encoded."""
    try:
        return rules.jwk_thumbprint(jwk)
    except RefusedProof as refused:
        raise InvalidDpopProof(refused.description) from None


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
    """The checked proof of one request (RFC 9449 section 4.3, see
    :func:`idp.verify.dpop.check_proof`), or invalid_dpop_proof."""
    try:
        return rules.check_proof(
            proof,
            method=method,
            url=url,
            now=now,
            max_age=max_age,
            leeway=leeway,
            access_token=access_token,
        )
    except RefusedProof as refused:
        raise InvalidDpopProof(refused.description) from None
