"""The key ring: versions, states, rotations from several store instances at once, and the
checks the store makes inside the ring's transaction."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from idp.admin.context import AdminContext
from idp.admin.keys import revoke_key, rotate_keys
from idp.config import Settings, new_key_encryption_key
from idp.keyring.changes import ensure_key_rings, run_scheduled_transitions
from idp.keyring.kek import KeyEncryptionKeyMismatch
from idp.keyring.scheduler import KeyRingScheduler
from idp.store.base import KeyRingChange, Store
from tests.support.keys import key_of
from tests.support.stores import open_stores

pytestmark = pytest.mark.anyio


async def test_key_ring_starts_empty_at_version_zero(store: Store) -> None:
    assert await store.list_keys() == []
    assert await store.key_ring_version() == 0


async def test_ensure_creates_active_and_next_per_alg_once(
    store: Store, settings: Settings
) -> None:
    keys = await ensure_key_rings(store, settings)
    states = sorted((k.alg, k.state) for k in keys)
    assert states == [
        ("ES256", "active"),
        ("ES256", "next"),
        ("RS256", "active"),
        ("RS256", "next"),
    ]
    version = await store.key_ring_version()
    assert version == 1
    await ensure_key_rings(store, settings)
    assert await store.key_ring_version() == version
    assert len(await store.list_keys()) == 4


async def test_rotation_promotes_next_and_retires_active(store: Store, settings: Settings) -> None:
    keys = await ensure_key_rings(store, settings)
    before = {(k.alg, k.state): k.kid for k in keys}
    [rotation] = await rotate_keys(AdminContext(store, settings), ["ES256"])
    assert rotation.active_kid == before[("ES256", "next")]
    assert rotation.retired_kid == before[("ES256", "active")]
    after = {k.kid: k for k in await store.list_keys()}
    assert after[rotation.active_kid].state == "active"
    assert after[rotation.active_kid].activated_at is not None
    assert after[before[("ES256", "active")]].state == "retired"
    assert after[before[("ES256", "active")]].retired_at is not None
    assert after[rotation.next_kid].state == "next"
    assert after[before[("RS256", "active")]].state == "active"


async def test_concurrent_rotations_keep_one_active_key(settings: Settings) -> None:
    """Several processes rotating at once are serialised by the store."""
    async with open_stores(settings.database_url, 3) as stores:
        await stores[0].migrate()
        await ensure_key_rings(stores[0], settings)
        await asyncio.gather(
            *(rotate_keys(AdminContext(each, settings), ["ES256"]) for each in stores)
        )
        keys = await stores[0].list_keys()
        es = [k for k in keys if k.alg == "ES256"]
        assert [k.state for k in es].count("active") == 1
        assert [k.state for k in es].count("retired") == 3
        assert [k.state for k in es].count("next") == 1
        assert await stores[0].key_ring_version() == 4


async def test_revoking_active_key_hands_over_and_erases_private_part(
    store: Store, settings: Settings
) -> None:
    keys = await ensure_key_rings(store, settings)
    active = next(k for k in keys if k.alg == "RS256" and k.state == "active")
    waiting = next(k for k in keys if k.alg == "RS256" and k.state == "next")
    revoked = await revoke_key(AdminContext(store, settings), active.kid)
    assert revoked.state == "revoked"
    after = {k.kid: k for k in await store.list_keys()}
    assert after[active.kid].state == "revoked"
    assert after[active.kid].private_key_sealed is None
    assert after[active.kid].revoked_at is not None
    assert after[waiting.kid].state == "active"
    rs = [k for k in after.values() if k.alg == "RS256"]
    assert sorted(k.state for k in rs) == ["active", "next", "revoked"]


async def test_failed_mutation_writes_nothing(store: Store, settings: Settings) -> None:
    await ensure_key_rings(store, settings)
    version = await store.key_ring_version()

    def broken(keys: object) -> KeyRingChange:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.change_key_ring(broken)
    assert await store.key_ring_version() == version


async def test_store_refuses_two_active_keys_for_one_alg(store: Store, settings: Settings) -> None:
    """The database itself enforces one active key per algorithm."""
    keys = await ensure_key_rings(store, settings)
    waiting = next(k for k in keys if k.alg == "ES256" and k.state == "next")
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        await store.change_key_ring(
            lambda _: KeyRingChange(updates=(replace(waiting, state="active"),))
        )
    states = sorted(k.state for k in await store.list_keys() if k.alg == "ES256")
    assert states == ["active", "next"]


@pytest.mark.anyio
async def test_a_key_ring_change_under_another_key_is_refused_inside_the_transaction(
    store: Store, settings: Settings
) -> None:
    """The check runs on the rows under the ring's lock: the scheduler or a rotation holding
    another key changes nothing (so no key is promoted that other processes cannot open)."""
    await ensure_key_rings(store, settings)
    keys, version = await store.list_keys(), await store.key_ring_version()
    other = Settings(
        **{**settings.__dict__, "key_encryption_key": key_of(new_key_encryption_key())}
    )
    with pytest.raises(KeyEncryptionKeyMismatch):
        await rotate_keys(AdminContext(store, other), ["ES256"])
    due = Settings(**{**other.__dict__, "key_rotation_interval": 1, "key_prepublish": 1})
    with pytest.raises(KeyEncryptionKeyMismatch):
        await run_scheduled_transitions(store, due, clock=lambda: 10**10)
    with pytest.raises(KeyEncryptionKeyMismatch):
        await KeyRingScheduler(store, due, lambda: 10**10).run_once()
    assert await store.list_keys() == keys
    assert await store.key_ring_version() == version
