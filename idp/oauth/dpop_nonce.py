"""Server-provided DPoP nonces (RFC 9449 section 8), stateless and valid on every replica.

A nonce is an HMAC over the number of the current time slot, under a key derived from a
secret every replica shares (the key-encryption key): any replica can issue one and check
one without the store. A nonce is accepted during its slot and the next one, so it lives at
least one slot and at most two, and a new one appears with every slot.
"""

from __future__ import annotations

import hashlib
import hmac

from idp.oauth.dpop import DpopProof, b64url
from idp.oauth.errors import UseDpopNonce

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


def check_nonce(proof: DpopProof, nonces: DpopNonces, now: float) -> None:
    """Refuse a proof without a live server nonce with use_dpop_nonce and a fresh nonce
    (RFC 9449 section 8, section 4.3 check 10)."""
    if not nonces.accepts(proof.nonce, now):
        described = "is stale" if proof.nonce else "is missing"
        raise UseDpopNonce(f"the DPoP proof's server nonce {described}", nonces.current(now))
