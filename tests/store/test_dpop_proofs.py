"""Accepted DPoP proofs in the store (RFC 9449 section 11.1): each is recorded once, on any
number of store objects sharing the database, until it expires and housekeeping collects it."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from idp.store.base import Store
from tests.support.stores import open_stores


def jti_hash(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@pytest.mark.anyio
async def test_a_proof_is_recorded_once_until_it_expires(store: Store) -> None:
    assert await store.record_dpop_proof(jti_hash("a"), 200.0, 100.0) is True
    assert await store.record_dpop_proof(jti_hash("a"), 210.0, 150.0) is False
    assert await store.record_dpop_proof(jti_hash("b"), 200.0, 150.0) is True
    # An expired row not yet collected is taken over by a new proof with the same hash.
    assert await store.record_dpop_proof(jti_hash("a"), 300.0, 200.0) is True
    assert await store.record_dpop_proof(jti_hash("a"), 300.0, 250.0) is False


@pytest.mark.anyio
async def test_housekeeping_deletes_expired_proofs(store: Store) -> None:
    for i in range(5):
        await store.record_dpop_proof(jti_hash(f"p{i}"), 100.0 + i, 50.0)
    assert await store.delete_expired_dpop_proofs(101.0, 10) == 2
    assert await store.delete_expired_dpop_proofs(200.0, 2) == 2
    assert await store.delete_expired_dpop_proofs(200.0, 2) == 1
    assert await store.delete_expired_dpop_proofs(200.0, 2) == 0
    assert await store.record_dpop_proof(jti_hash("p4"), 300.0, 50.0) is True


@pytest.mark.anyio
async def test_of_replicas_recording_one_proof_exactly_one_wins(
    store: Store, database_url: str
) -> None:
    async with open_stores(database_url, 4) as replicas:
        for round_ in range(5):
            key = jti_hash(f"race-{round_}")
            results = await asyncio.gather(
                *(replica.record_dpop_proof(key, 500.0, 100.0) for replica in replicas)
            )
            assert sorted(results) == [False, False, False, True]
