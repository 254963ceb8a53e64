"""Key-ring operations for administrators (CLI and, later, the admin API)."""

from __future__ import annotations

from collections.abc import Sequence

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.keyring import lifecycle
from idp.keyring.lifecycle import KeyRingError, NewKey, Rotation
from idp.keyring.material import new_key_record
from idp.store.base import SYSTEM, Actor, KeyRecord, KeyRingChange, Store


def key_factory(settings: Settings, clock: Clock) -> NewKey:
    """Make new key rows sealed under the configured key-encryption key."""

    def make(alg: str, state: str) -> KeyRecord:
        return new_key_record(
            alg, settings.rsa_key_bits, settings.key_encryption_key, state, clock()
        )

    return make


async def ensure_key_rings(
    store: Store, settings: Settings, clock: Clock = system_clock, actor: str = SYSTEM
) -> list[KeyRecord]:
    """Create an active and a next key for every configured algorithm that lacks them."""
    new_key = key_factory(settings, clock)
    return await store.change_key_ring(
        lambda keys: lifecycle.ensure_rings(keys, settings.signing_algs, new_key),
        Actor(actor, clock()),
    )


async def rotate_keys(
    store: Store,
    settings: Settings,
    algs: Sequence[str],
    clock: Clock = system_clock,
    actor: str = SYSTEM,
) -> list[Rotation]:
    """Rotate each named algorithm's ring at once, in one transaction."""
    new_key = key_factory(settings, clock)
    rotations: list[Rotation] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        rotations.clear()
        inserts: list[KeyRecord] = []
        updates: list[KeyRecord] = []
        for alg in algs:
            change, rotation = lifecycle.rotate(keys, alg, new_key, clock())
            inserts.extend(change.inserts)
            updates.extend(change.updates)
            rotations.append(rotation)
        return KeyRingChange(tuple(inserts), tuple(updates))

    await store.change_key_ring(mutate, Actor(actor, clock()))
    return rotations


async def rotate_now(
    store: Store,
    settings: Settings,
    algs: Sequence[str],
    clock: Clock = system_clock,
    actor: str = SYSTEM,
) -> list[Rotation]:
    """Rotate the named algorithms now; an algorithm with no ring yet gets one instead.

    What ``idp keys rotate`` and ``POST /admin/keys/rotate`` both do. For a new ring the
    result has no retired kid.
    """
    keys = await store.list_keys()
    empty = [a for a in algs if not any(k.alg == a and k.state == "active" for k in keys)]
    if empty:
        keys = await ensure_key_rings(store, settings, clock, actor)
    rotated = [a for a in algs if a not in empty]
    results = await rotate_keys(store, settings, rotated, clock, actor) if rotated else []
    for alg in empty:
        active = next(k for k in keys if k.alg == alg and k.state == "active")
        waiting = next(k.kid for k in keys if k.alg == alg and k.state == "next")
        results.append(Rotation(alg, active.kid, None, waiting))
    return results


async def revoke_key(
    store: Store, settings: Settings, kid: str, clock: Clock = system_clock, actor: str = SYSTEM
) -> KeyRecord:
    """Revoke one key by kid; raises NotFound or KeyRingError."""
    new_key = key_factory(settings, clock)
    revoked: list[KeyRecord] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        change, record = lifecycle.revoke(keys, kid, new_key, clock())
        revoked[:] = [record]
        return change

    await store.change_key_ring(mutate, Actor(actor, clock()))
    return revoked[0]


__all__ = [
    "KeyRingError",
    "ensure_key_rings",
    "key_factory",
    "revoke_key",
    "rotate_keys",
    "rotate_now",
]
