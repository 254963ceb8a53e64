"""Where each algorithm's key ring stands, in plain words (``idp keys status``, admin API).

Pure: rows, policy and the time in; a :class:`RingStatus` out. The rules it explains are
those of :mod:`idp.keyring.lifecycle` (pre-publication before promotion, RFC 7517 key sets
cached by verifiers for IDP_JWKS_MAX_AGE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.keyring.lifecycle import (
    LifecyclePolicy,
    human_duration,
    interim_until,
    iso,
    keys_in,
    rotation_due_at,
    waiting_keys,
)
from idp.store.base import KeyRecord


@dataclass(frozen=True)
class RingStatus:
    """Where one algorithm's ring stands and what its next rotation means for verifiers."""

    alg: str
    active_kid: str | None
    next_kid: str | None
    rotation_due_at: float | None
    rotation_at: float | None
    next_published_for_at_rotation: float | None
    verifiers_safe: bool
    manual_rotation_safe_now: bool
    summary: str


def ring_status(
    keys: Sequence[KeyRecord], alg: str, policy: LifecyclePolicy, now: float
) -> RingStatus:
    """The state of ``alg``'s ring in plain words: next rotation, and whether it is safe.

    Safe means the key to be promoted will have been published for at least ``prepublish``
    (twice the JWKS cache lifetime by default) when it starts signing, so no verifier that
    honours ``Cache-Control`` can meet its kid unannounced. Scheduled rotations wait for
    that; a manual rotation does not, so the status also says whether one would be safe now.
    """
    active = keys_in(keys, alg, "active")
    candidates = waiting_keys(keys, alg)
    if not active:
        return RingStatus(
            alg, None, None, None, None, None, False, False,
            f"{alg}: no active key; tokens cannot be signed with {alg} until the server "
            "creates one at start",
        )  # fmt: skip
    current = active[0]
    due = rotation_due_at(current, policy)
    lines = [
        f"{alg}: active key {current.kid} signs since "
        f"{iso(current.activated_at or current.created_at)}."
    ]
    if not candidates:
        lines.append(
            "There is no next key yet; the scheduler publishes one within seconds, and the "
            f"rotation (due {iso(due)}) waits until it has been published for "
            f"{human_duration(policy.prepublish)}."
        )
        return RingStatus(
            alg, current.kid, None, due, None, None, True, False, " ".join(lines)
        )  # fmt: skip
    candidate = candidates[0]
    at = max(due, candidate.created_at + policy.prepublish)
    published_for = at - candidate.created_at
    when = "now" if at <= now else f"in {human_duration(at - now)}"
    lines.append(
        f"Next scheduled rotation at {iso(at)} ({when}) promotes key {candidate.kid}, "
        f"published since {iso(candidate.created_at)}."
    )
    if at > due:
        lines.append(
            f"The rotation was due at {iso(due)} but waits until that key has been published "
            f"for {human_duration(policy.prepublish)}."
        )
    lines.append(
        f"By then it will have been published for {human_duration(published_for)} (at least "
        f"{human_duration(policy.prepublish)} needed): no verifier that honours the JWKS cache "
        "lifetime can be caught out."
    )
    for retired in keys_in(keys, alg, "retired"):
        until = interim_until(keys, retired, policy.prepublish)
        if until > now:
            lines.append(
                f"After a hasty manual rotation, retired key {retired.kid} keeps signing until "
                f"{iso(until)}, when the active key will have been published for "
                f"{human_duration(policy.prepublish)}."
            )
    manual_safe = now - candidate.created_at >= policy.prepublish
    if not manual_safe:
        lines.append(
            "A manual rotation now would promote a key published for only "
            f"{human_duration(now - candidate.created_at)}; the current key would keep "
            f"signing until the new one has been published for {human_duration(policy.prepublish)}."
        )
    return RingStatus(
        alg, current.kid, candidate.kid, due, at, published_for, True, manual_safe,
        " ".join(lines),
    )  # fmt: skip
