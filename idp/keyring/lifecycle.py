"""Key-ring transitions as pure functions: given the rows, say what changes.

States (per algorithm): ``next`` is published but does not sign yet, ``active`` signs,
``retired`` stays published so tokens it signed keep verifying, ``revoked`` is gone from
JWKS at once and its private part is erased. Each function returns a KeyRingChange that
the store applies in one serialised transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from idp.store.base import KeyRecord, KeyRingChange, NotFound

NewKey = Callable[[str, str], KeyRecord]
"""Makes a new key row: (alg, state) -> KeyRecord."""

PUBLISHED_STATES = ("next", "active", "retired")


class KeyRingError(Exception):
    """A key-ring operation that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Rotation:
    """Outcome of a rotation of one algorithm's ring."""

    alg: str
    active_kid: str
    retired_kid: str | None
    next_kid: str


def _of(keys: Sequence[KeyRecord], alg: str, state: str) -> list[KeyRecord]:
    return [k for k in keys if k.alg == alg and k.state == state]


def ensure_rings(keys: Sequence[KeyRecord], algs: Sequence[str], new_key: NewKey) -> KeyRingChange:
    """Give every algorithm that lacks one an active key and a next key."""
    inserts: list[KeyRecord] = []
    for alg in algs:
        if not _of(keys, alg, "active"):
            inserts.append(new_key(alg, "active"))
        if not _of(keys, alg, "next"):
            inserts.append(new_key(alg, "next"))
    return KeyRingChange(inserts=tuple(inserts))


def rotate(
    keys: Sequence[KeyRecord], alg: str, new_key: NewKey, now: float
) -> tuple[KeyRingChange, Rotation]:
    """Promote the oldest ``next`` key (or a new one), retire the active one, add a new ``next``."""
    updates: list[KeyRecord] = []
    inserts: list[KeyRecord] = []
    current = _of(keys, alg, "active")
    retired_kid = None
    for old in current:
        updates.append(replace(old, state="retired", retired_at=now))
        retired_kid = old.kid
    waiting = sorted(_of(keys, alg, "next"), key=lambda k: (k.created_at, k.kid))
    if waiting:
        promoted = replace(waiting[0], state="active", activated_at=now)
        updates.append(promoted)
    else:
        promoted = new_key(alg, "active")
        inserts.append(promoted)
    if len(waiting) <= 1:
        fresh_next = new_key(alg, "next")
        inserts.append(fresh_next)
        next_kid = fresh_next.kid
    else:
        next_kid = waiting[1].kid
    change = KeyRingChange(inserts=tuple(inserts), updates=tuple(updates))
    return change, Rotation(alg, promoted.kid, retired_kid, next_kid)


def revoke(
    keys: Sequence[KeyRecord], kid: str, new_key: NewKey, now: float
) -> tuple[KeyRingChange, KeyRecord]:
    """Revoke one key at once; if it was active, the ``next`` key (or a new one) takes over.

    The revoked key's private part is erased so it can never sign again. The ring keeps a
    ``next`` key afterwards, so the following rotation is pre-published as usual.
    """
    target = next((k for k in keys if k.kid == kid), None)
    if target is None:
        raise NotFound(f"no key with kid {kid!r}")
    if target.state in ("revoked", "expired"):
        raise KeyRingError(f"key {kid} is already {target.state}")
    revoked = replace(target, state="revoked", revoked_at=now, private_key_sealed=None)
    updates = [revoked]
    inserts: list[KeyRecord] = []
    waiting = sorted(
        (k for k in _of(keys, target.alg, "next") if k.kid != kid),
        key=lambda k: (k.created_at, k.kid),
    )
    if target.state == "active":
        if waiting:
            updates.append(replace(waiting.pop(0), state="active", activated_at=now))
        else:
            inserts.append(new_key(target.alg, "active"))
    if not waiting:
        inserts.append(new_key(target.alg, "next"))
    return KeyRingChange(inserts=tuple(inserts), updates=tuple(updates)), revoked
