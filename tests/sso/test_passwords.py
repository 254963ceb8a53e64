"""Password checks on both stores: verification, one answer for every failure, rehashing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from argon2 import PasswordHasher

import idp.sso.passwords as module
from idp.admin.context import AdminContext
from idp.admin.users import create_user
from idp.config import Settings
from idp.sso.login import check_password
from idp.sso.passwords import (
    HASH_THREAD_NICE_INCREMENT,
    MAX_NICE,
    PasswordService,
    needs_rehash,
    verify_password,
)
from idp.store.base import Store

pytestmark = pytest.mark.anyio


async def test_right_password_signs_in_and_every_failure_looks_the_same(
    store: Store, settings: Settings
) -> None:
    passwords = PasswordService(2)
    user = await create_user(AdminContext(store, settings), "alice", "correct horse")
    assert await check_password(store, passwords, "alice", "correct horse") == user
    assert await check_password(store, passwords, " alice ", "correct horse") == user
    assert await check_password(store, passwords, "alice", "wrong") is None
    assert await check_password(store, passwords, "nobody", "correct horse") is None
    assert await check_password(store, passwords, "", "") is None
    assert await check_password(store, passwords, "alice", "x" * 5000) is None
    assert await store.update_user(replace(user, disabled=True))
    assert await check_password(store, passwords, "alice", "correct horse") is None


async def test_old_parameters_are_rehashed_on_login(store: Store, settings: Settings) -> None:
    passwords = PasswordService(2)
    user = await create_user(AdminContext(store, settings), "bob", "password-1")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("password-1")
    await store.set_user_password_hash(user.id, weak)
    assert needs_rehash(weak)
    assert await check_password(store, passwords, "bob", "password-1") is not None
    stored = await store.get_user(user.id)
    assert stored is not None and stored.password_hash != weak
    assert not needs_rehash(stored.password_hash)
    assert verify_password(stored.password_hash, "password-1")


@contextlib.contextmanager
def watching_verifications() -> Iterator[dict[str, Any]]:
    """Count the real verifications running at once, and note each one's thread niceness."""
    seen: dict[str, Any] = {"running": 0, "peak": 0, "nice": set(), "threads": set()}
    lock = threading.Lock()
    real_verify = verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        thread = threading.get_native_id()
        with lock:
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
            seen["threads"].add(thread)
            if sys.platform.startswith("linux"):
                seen["nice"].add(os.getpriority(os.PRIO_PROCESS, thread))
        try:
            return real_verify(password_hash, password)
        finally:
            with lock:
                seen["running"] -= 1

    module.verify_password = counting_verify
    try:
        yield seen
    finally:
        module.verify_password = real_verify


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_concurrent_verifications_are_bounded(concurrency: int) -> None:
    passwords = PasswordService(concurrency)
    stored = await passwords.hash("pw")
    with watching_verifications() as seen:
        results = await asyncio.gather(
            *(passwords.verify(stored, pw) for pw in ["pw", "no"] * (concurrency + 2))
        )
    assert results == [True, False] * (concurrency + 2)
    assert seen["peak"] == concurrency
    assert len(seen["threads"]) <= concurrency


async def test_unknown_users_are_checked_within_the_same_bound() -> None:
    passwords = PasswordService(1)
    assert not await passwords.verify(None, "pw")  # makes the dummy hash once
    with watching_verifications() as seen:
        results = await asyncio.gather(*(passwords.verify(None, "pw") for _ in range(3)))
    assert results == [False] * 3
    assert seen["peak"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_hashing_threads_run_at_lower_priority_than_the_event_loop() -> None:
    loop_thread = threading.get_native_id()
    loop_nice = os.getpriority(os.PRIO_PROCESS, loop_thread)
    passwords = PasswordService(2)
    stored = await passwords.hash("pw")
    with watching_verifications() as seen:
        assert await passwords.verify(stored, "pw")
    expected = min(MAX_NICE, loop_nice + HASH_THREAD_NICE_INCREMENT)
    assert seen["nice"] == {expected}
    assert loop_thread not in seen["threads"]
    assert os.getpriority(os.PRIO_PROCESS, loop_thread) == loop_nice


async def test_the_event_loop_keeps_running_while_passwords_are_checked() -> None:
    passwords = PasswordService(2)
    stored = await passwords.hash("pw")
    ticks = 0
    checking = asyncio.gather(*(passwords.verify(stored, "pw") for _ in range(4)))
    while not checking.done():
        ticks += 1
        await asyncio.sleep(0.001)
    assert await checking == [True] * 4
    # Four verifications take several hundred milliseconds of hashing; a loop blocked by
    # them would tick once per check at most.
    assert ticks > 20


def test_malformed_hash_never_matches() -> None:
    assert not verify_password("not a hash", "pw")
    assert needs_rehash("not a hash")
