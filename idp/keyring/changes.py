"""Key-ring changes the server makes on its own, and the pieces admin key operations share.

At start the server makes any missing ring (``ensure_key_rings``); in every process the
scheduler runs the due transitions (``run_scheduled_transitions``). Both go through the store's
serialised ``change_key_ring`` behind ``checked`` (the key-encryption key must open every key
first). The operations an administrator asks for (rotate, revoke, import, rewrap) live in
:mod:`idp.admin.keys` and use the same pieces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.keyring import lifecycle
from idp.keyring.kek import check_opens
from idp.keyring.lifecycle import LifecyclePolicy, NewKey, ScheduledPass
from idp.keyring.material import new_key_record
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

    ``actor`` and ``subject`` (an admin token's ``sub``) name who asked, in the audit rows.
    """
    new_key = key_factory(settings, clock)
    return await store.change_key_ring(
        checked(
            settings, lambda keys: lifecycle.ensure_rings(keys, settings.signing_algs, new_key)
        ),
        Actor(actor, clock(), subject),
    )


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
    new_key = prepared_factory(prepared, key_factory(settings, clock), clock)
    policy = LifecyclePolicy.from_settings(settings)
    outcome: list[ScheduledPass] = []

    def mutate(keys: Sequence[KeyRecord]) -> KeyRingChange:
        found = lifecycle.scheduled_pass(keys, settings.signing_algs, policy, new_key, clock())
        outcome[:] = [found]
        return found.change

    await store.change_key_ring(checked(settings, mutate), Actor(SCHEDULER, clock()))
    return outcome[0]


def prepared_factory(prepared: Sequence[KeyRecord], fallback: NewKey, clock: Clock) -> NewKey:
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


async def ready_factory(settings: Settings, clock: Clock, algs: Sequence[str]) -> NewKey:
    """A key factory that first hands out keys for ``algs`` generated in a worker thread."""
    prepared = await prepare_keys(settings, algs, clock) if algs else []
    return prepared_factory(prepared, key_factory(settings, clock), clock)


async def prepare_keys(settings: Settings, algs: Sequence[str], clock: Clock) -> list[KeyRecord]:
    """Generate keys for ``algs`` in a worker thread (RSA generation takes a while)."""
    make = key_factory(settings, clock)
    return await asyncio.to_thread(lambda: [make(alg, "next") for alg in algs])


__all__ = [
    "SCHEDULER",
    "checked",
    "ensure_key_rings",
    "key_factory",
    "prepare_keys",
    "prepared_factory",
    "ready_factory",
    "run_scheduled_transitions",
]
