"""Server-provided DPoP nonces at the token endpoint and /par (RFC 9449 section 8).

The nonces themselves (:class:`idp.verify.dpop.DpopNonces`: an HMAC over the current time
slot under a key derived from a secret every replica shares, here the key-encryption key)
live in the verifier library, so a resource server issues and checks them the same way.
"""

from __future__ import annotations

from idp.oauth.dpop import DpopProof
from idp.oauth.errors import UseDpopNonce
from idp.verify.dpop import DpopNonces

__all__ = ["DpopNonces", "check_nonce"]


def check_nonce(proof: DpopProof, nonces: DpopNonces, now: float) -> None:
    """Refuse a proof without a live server nonce with use_dpop_nonce and a fresh nonce
    (RFC 9449 section 8, section 4.3 check 10)."""
    if not nonces.accepts(proof.nonce, now):
        described = "is stale" if proof.nonce else "is missing"
        raise UseDpopNonce(f"the DPoP proof's server nonce {described}", nonces.current(now))
