"""Password checks on both stores: verification, one answer for every failure, rehashing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from idp.login import check_password
from idp.management import create_user
from idp.passwords import PasswordService, needs_rehash, verify_password
from idp.store.base import Store

pytestmark = pytest.mark.anyio


async def test_right_password_signs_in_and_every_failure_looks_the_same(store: Store) -> None:
    passwords = PasswordService(2)
    user = await create_user(store, "alice", "correct horse")
    assert await check_password(store, passwords, "alice", "correct horse") == user
    assert await check_password(store, passwords, " alice ", "correct horse") == user
    assert await check_password(store, passwords, "alice", "wrong") is None
    assert await check_password(store, passwords, "nobody", "correct horse") is None
    assert await check_password(store, passwords, "", "") is None
    assert await check_password(store, passwords, "alice", "x" * 5000) is None
    await store.set_user_disabled(user.id, True)
    assert await check_password(store, passwords, "alice", "correct horse") is None


async def test_old_parameters_are_rehashed_on_login(store: Store) -> None:
    passwords = PasswordService(2)
    user = await create_user(store, "bob", "pw-1")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw-1")
    await store.set_user_password_hash(user.id, weak)
    assert needs_rehash(weak)
    assert await check_password(store, passwords, "bob", "pw-1") is not None
    stored = await store.get_user(user.id)
    assert stored is not None and stored.password_hash != weak
    assert not needs_rehash(stored.password_hash)
    assert verify_password(stored.password_hash, "pw-1")


async def test_concurrent_hashes_are_bounded() -> None:
    passwords = PasswordService(1)
    stored = await passwords.hash("pw")
    running = 0
    peak = 0
    lock = threading.Lock()
    real_verify = verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real_verify(password_hash, password)
        finally:
            with lock:
                running -= 1

    import idp.passwords as module

    module.verify_password = counting_verify
    try:
        results = await asyncio.gather(*(passwords.verify(stored, "pw") for _ in range(4)))
    finally:
        module.verify_password = real_verify
    assert results == [True] * 4
    assert peak == 1


def test_malformed_hash_never_matches() -> None:
    assert not verify_password("not a hash", "pw")
    assert needs_rehash("not a hash")
