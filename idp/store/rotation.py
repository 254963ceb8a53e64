"""The rules of refresh-token rotation the SQL store applies inside its transaction.

RFC 9700 section 4.14.2: a refresh token is single-use; presenting one that was already
rotated means two parties hold it, so the whole family is revoked. The one exception is the
immediate predecessor of the newest generation, presented again within a short grace period:
that is two tabs of one browser refreshing at the same moment, and it gets a sibling
successor instead (a second live token of the same generation), because the store keeps only
hashes and cannot hand out the first successor again.
"""

from __future__ import annotations

from dataclasses import replace

from idp.store.records import NewRefreshToken, RefreshTokenRecord, RotationOutcome


def refusal(
    row: RefreshTokenRecord | None, *, client_id: str, now: float, user_disabled: bool
) -> RotationOutcome | None:
    """Why a token cannot be rotated at all, or None when it is a rotated one to judge for reuse.

    A token of another client is refused without touching it (RFC 6749 section 6: the
    refresh token is bound to the client it was issued to).
    """
    if row is None:
        return RotationOutcome.UNKNOWN
    if row.client_id != client_id:
        return RotationOutcome.WRONG_CLIENT
    if row.revoked_at is not None:
        return RotationOutcome.REVOKED
    if row.expires_at <= now:
        return RotationOutcome.EXPIRED
    if user_disabled:
        return RotationOutcome.USER_DISABLED
    if row.rotated_at is None:
        # Only reachable if the row changed between two statements of one locked
        # transaction, which the stores rule out; refuse rather than guess.
        return RotationOutcome.UNKNOWN
    return None


def reuse_outcome(
    row: RefreshTokenRecord, *, now: float, reuse_grace: float, newest_generation: int
) -> RotationOutcome:
    """GRACE_SIBLING for the newest generation's parent within the grace period, else REUSED.

    A grace of 0 never applies, so of two concurrent refreshes of one token exactly one
    succeeds, even when the loser read the clock before the winner (``now < rotated_at``).
    """
    assert row.rotated_at is not None
    within_grace = reuse_grace > 0 and now < row.rotated_at + reuse_grace
    if within_grace and newest_generation == row.generation + 1:
        return RotationOutcome.GRACE_SIBLING
    return RotationOutcome.REUSED


def successor_of(row: RefreshTokenRecord, new: NewRefreshToken, now: float) -> RefreshTokenRecord:
    """The next token of the family: same grant, one generation further, a fresh expiry."""
    return replace(
        row,
        id=new.id,
        token_hash=new.token_hash,
        parent_id=row.id,
        generation=row.generation + 1,
        created_at=now,
        expires_at=new.expires_at,
        rotated_at=None,
        revoked_at=None,
    )
