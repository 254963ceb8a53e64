"""A request's DPoP proof, checked and accepted once across every replica (RFC 9449).

:func:`accepted_proof` is the one step every endpoint that takes DPoP runs: the one ``DPoP``
header (section 4.3 check 1), the proof's own checks (:func:`idp.oauth.dpop.check_proof`),
the server nonce when the deployment requires one (section 8), and its single use: the
proof's key thumbprint and ``jti`` are recorded in the store until the proof would be too old
anyway, and a proof already recorded is refused (section 11.1), whichever replica saw it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from idp.config import DEFAULT_LEEWAY, Settings
from idp.oauth.dpop import DpopProof, check_proof, only_proof
from idp.oauth.dpop_nonce import DpopNonces, check_nonce
from idp.oauth.errors import InvalidDpopProof
from idp.store.base import DpopProofStore


@dataclass(frozen=True)
class DpopPolicy:
    """How proofs are judged: their age window, and the nonces when they are required."""

    max_age: int
    """Seconds a proof stays acceptable after its ``iat`` (plus ``leeway``)."""
    leeway: int = DEFAULT_LEEWAY
    nonces: DpopNonces | None = None
    """Set when every proof at the token endpoint must carry a server nonce (section 8)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DpopPolicy:
        nonces = (
            DpopNonces(settings.key_encryption_key, settings.dpop_nonce_lifetime)
            if settings.dpop_require_nonce
            else None
        )
        return cls(max_age=settings.dpop_proof_max_age, nonces=nonces)


def replay_key(proof: DpopProof) -> bytes:
    """What the store keeps of a proof: SHA-256 over its key thumbprint and ``jti`` (a jti
    is unique per key, so one client's jti never collides with another's)."""
    return hashlib.sha256(f"{proof.jkt}:{proof.jti}".encode()).digest()


async def accepted_proof(
    values: Sequence[str],
    store: DpopProofStore,
    policy: DpopPolicy,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    nonce_required: bool = False,
) -> DpopProof | None:
    """The request's checked proof recorded as used, None without one; InvalidDpopProof for a
    bad, repeated or replayed proof, UseDpopNonce when ``nonce_required`` and the policy has
    nonces and the proof lacks a live one."""
    raw = only_proof(values)
    if raw is None:
        return None
    proof = check_proof(
        raw,
        method=method,
        url=url,
        now=now,
        max_age=policy.max_age,
        leeway=policy.leeway,
        access_token=access_token,
    )
    if nonce_required and policy.nonces is not None:
        check_nonce(proof, policy.nonces, now)
    expires_at = proof.issued_at + policy.max_age + policy.leeway
    if not await store.record_dpop_proof(replay_key(proof), expires_at, now):
        raise InvalidDpopProof("the DPoP proof has already been used")
    return proof
