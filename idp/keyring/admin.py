"""Key-ring operations for administrators (CLI and, later, the admin API)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from dataclasses import replace

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.keyring import lifecycle
from idp.keyring.kek import check_opens
from idp.keyring.lifecycle import KeyRingError, LifecyclePolicy, NewKey, Rotation, ScheduledPass
from idp.keyring.material import imported_key_record, new_key_record, reseal
from idp.store.base import SYSTEM, Actor, KeyRecord, KeyRingChange, KeyRingMutation, Store

SCHEDULER = "scheduler"


def key_factory(settings: Settings, clock: Clock) -> NewKey:
    """Make new key rows sealed under the configured key-encryption key."""

    def make(alg: str, state: str) -> KeyRecord:
        return new_key_record(
            alg, settings.rsa_key_bits, settings.key_encryption_key, state, clock()
        )

    return make


def checked(settings: Settings, mutation: KeyRingMutation) -> KeyRingMutation:
    """``mutation``, run only when the configured key opens every sealed key in the ring.

    The check runs inside the serialised key-ring transaction, on the rows as they are
    under the lock, so no process with another key-encryption key ever adds or changes a key
    (raises KeyEncryptionKeyMismatch; nothing is written).
    """

    def run(keys: Sequence[KeyRecord]) -> KeyRingChange:
        check_opens(keys, settings.key_encryption_key, settings.key_encryption_key_source)
        return mutation(keys)

    return run


async def ensure_key_rings(
    store: Store,
    settings: Settings,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> list[KeyRecord]:
    """Create an active and a next key for every configured algorithm that lacks them.

    ``subject`` (here and below) is the admin token's ``sub``, recorded in the audit rows.
    """
    new_key = key_factory(settings, clock)
    return await store.change_key_ring(
        checked(
            settings, lambda keys: lifecycle.ensure_rings(keys, settings.signing_algs, new_key)
        ),
        Actor(actor, clock(), subject),
    )


async def rotate_keys(
    store: Store,
    settings: Settings,
    algs: Sequence[str],
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> list[Rotation]:
    """Rotate each named algorithm's ring at once, in one transaction.

    Each Rotation carries a warning when its promoted key had been published for less than
    IDP_KEY_PREPUBLISH; the rotation happens all the same (the administrator asked).
    The new keys are generated before the transaction, off the event loop.
    """
    new_key = await _ready_factory(settings, clock, algs)
    rotations: list[Rotation] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        rotations.clear()
        inserts: list[KeyRecord] = []
        updates: list[KeyRecord] = []
        for alg in algs:
            change, rotation = lifecycle.rotate(
                keys, alg, new_key, clock(), prepublish=settings.key_prepublish
            )
            inserts.extend(change.inserts)
            updates.extend(change.updates)
            rotations.append(rotation)
        return KeyRingChange(tuple(inserts), tuple(updates))

    await store.change_key_ring(checked(settings, mutate), Actor(actor, clock(), subject))
    return rotations


async def rotate_now(
    store: Store,
    settings: Settings,
    algs: Sequence[str],
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> list[Rotation]:
    """Rotate the named algorithms now; an algorithm with no ring yet gets one instead.

    What ``idp keys rotate`` and ``POST /admin/keys/rotate`` both do. For a new ring the
    result has no retired kid.
    """
    keys = await store.list_keys()
    empty = [a for a in algs if not any(k.alg == a and k.state == "active" for k in keys)]
    if empty:
        keys = await ensure_key_rings(store, settings, clock, actor, subject)
    rotated = [a for a in algs if a not in empty]
    results = await rotate_keys(store, settings, rotated, clock, actor, subject) if rotated else []
    for alg in empty:
        active = next(k for k in keys if k.alg == alg and k.state == "active")
        waiting = next(k.kid for k in keys if k.alg == alg and k.state == "next")
        results.append(Rotation(alg, active.kid, None, waiting))
    return results


async def revoke_key(
    store: Store,
    settings: Settings,
    kid: str,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> KeyRecord:
    """Revoke one key by kid; raises NotFound or KeyRingError.

    Revoking a signing or waiting key needs a replacement, generated before the
    transaction, off the event loop.
    """
    found = next((k for k in await store.list_keys() if k.kid == kid), None)
    needs_key = found is not None and found.state in ("active", "next")
    new_key = await _ready_factory(settings, clock, [found.alg] if found and needs_key else [])
    revoked: list[KeyRecord] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        change, record = lifecycle.revoke(keys, kid, new_key, clock())
        revoked[:] = [record]
        return change

    await store.change_key_ring(checked(settings, mutate), Actor(actor, clock(), subject))
    return revoked[0]


async def run_scheduled_transitions(
    store: Store,
    settings: Settings,
    clock: Clock = system_clock,
    prepared: Sequence[KeyRecord] = (),
) -> ScheduledPass:
    """Perform every transition due now, as the scheduler, in one serialised transaction.

    The pass is computed inside the transaction from the rows as they are then, so when
    several processes run it at once the first one does the work and the others find
    nothing left to do. ``prepared`` keys (generated beforehand, off the event loop) are
    used first for any new key the pass needs.
    """
    new_key = _prepared_factory(prepared, key_factory(settings, clock), clock)
    policy = LifecyclePolicy.from_settings(settings)
    outcome: list[ScheduledPass] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        found = lifecycle.scheduled_pass(keys, settings.signing_algs, policy, new_key, clock())
        outcome[:] = [found]
        return found.change

    await store.change_key_ring(checked(settings, mutate), Actor(SCHEDULER, clock()))
    return outcome[0]


def _prepared_factory(prepared: Sequence[KeyRecord], fallback: NewKey, clock: Clock) -> NewKey:
    """Hand out ready keys of the asked alg (timestamped now), then fresh ones."""
    spare = list(prepared)

    def make(alg: str, state: str) -> KeyRecord:
        for index, key in enumerate(spare):
            if key.alg == alg:
                del spare[index]
                now = clock()
                activated = now if state == "active" else None
                return replace(key, state=state, created_at=now, activated_at=activated)
        return fallback(alg, state)

    return make


async def _ready_factory(settings: Settings, clock: Clock, algs: Sequence[str]) -> NewKey:
    """A key factory that first hands out keys for ``algs`` generated in a worker thread."""
    prepared = await prepare_keys(settings, algs, clock) if algs else []
    return _prepared_factory(prepared, key_factory(settings, clock), clock)


async def prepare_keys(settings: Settings, algs: Sequence[str], clock: Clock) -> list[KeyRecord]:
    """Generate keys for ``algs`` in a worker thread (RSA generation takes a while)."""
    make = key_factory(settings, clock)
    return await asyncio.to_thread(lambda: [make(alg, "next") for alg in algs])


async def import_key(
    store: Store,
    settings: Settings,
    alg: str,
    pem: bytes,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
) -> KeyRecord:
    """Add an operator's private key to ``alg``'s ring as a ``next`` key, sealed and audited.

    Raises KeyImportError for an unusable PEM and KeyRingError when the key is already in
    the ring (whatever its state).
    """
    record = imported_key_record(alg, pem, settings.key_encryption_key, clock())

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        existing = next((k for k in keys if k.kid == record.kid), None)
        if existing is not None:
            raise KeyRingError(f"key {record.kid} is already in the ring ({existing.state})")
        return KeyRingChange(inserts=(record,), imported=frozenset({record.kid}))

    await store.change_key_ring(checked(settings, mutate), Actor(actor, clock()))
    return record


async def rewrap_keys(
    store: Store,
    settings: Settings,
    new_key_encryption_key: bytes,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
) -> list[KeyRecord]:
    """Seal every key's private part anew under ``new_key_encryption_key``, in one transaction.

    Each re-sealed key is audited as ``key.rewrap``; states and kids stay as they are. The
    configured key must open every sealed key first (KeyEncryptionKeyMismatch otherwise,
    nothing written). Returns the re-sealed rows. Afterwards only the new key opens the ring:
    every process must be given it (see README, "Keys").
    """
    old_key = settings.key_encryption_key
    if hmac.compare_digest(new_key_encryption_key, old_key):
        raise KeyRingError("the new key-encryption key is the one already in use")
    rewrapped: list[KeyRecord] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        updates = tuple(
            reseal(k, old_key, new_key_encryption_key) for k in keys if k.private_key_sealed
        )
        rewrapped[:] = updates
        return KeyRingChange(updates=updates, rewrapped=frozenset(k.kid for k in updates))

    await store.change_key_ring(checked(settings, mutate), Actor(actor, clock()))
    return rewrapped


__all__ = [
    "SCHEDULER",
    "KeyRingError",
    "ensure_key_rings",
    "import_key",
    "key_factory",
    "revoke_key",
    "rewrap_keys",
    "rotate_keys",
    "rotate_now",
    "run_scheduled_transitions",
]
