"""DPoP proofs already accepted (RFC 9449 section 11.1): one row per proof until it expires.

The primary key makes the insert the decision: of two replicas recording the same proof,
one inserts and the other finds the row. A row whose expiry has passed (not yet collected by
housekeeping) is taken over, since its proof would be refused for its age anyway.
"""

from __future__ import annotations

from idp.store.sql.core import SqlBase


class DpopProofs(SqlBase):
    """DpopProofStore."""

    async def record_dpop_proof(self, jti_hash: bytes, expires_at: float, now: float) -> bool:
        count = await self._execute(
            "INSERT INTO dpop_proofs (jti_hash, expires_at) VALUES (?, ?) "
            "ON CONFLICT (jti_hash) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE dpop_proofs.expires_at <= ?",
            jti_hash,
            expires_at,
            now,
        )
        return count > 0

    async def delete_expired_dpop_proofs(self, now: float, limit: int) -> int:
        return await self._collect("dpop_proofs", "jti_hash", now, limit)
