"""The sign-in throttle's counters in the store: reserved atomically before the password check,
even by parallel attempts through two store objects, and collected once expired."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.sso.throttle import (
    account_key,
    clear_account,
    ip_key,
    pair_key,
    record_login_success,
    reserve_login_attempt,
)
from idp.sso.throttle_policy import ThrottleVerdict
from idp.store.base import Store
from tests.support.clocks import T0, FakeClock
from tests.support.stores import open_stores


async def _attempt(store: Store, settings: Settings, clock: FakeClock, **who: str) -> bool:
    return (await reserve_login_attempt(store, settings, clock, **who)).allowed


async def _fail(store: Store, settings: Settings, clock: FakeClock, n: int, **who: str) -> None:
    """``n`` attempts that are each allowed (and so counted) and then fail."""
    for _ in range(n):
        assert await _attempt(store, settings, clock, **who)


ADA = {"username": "ada", "ip": "192.0.2.1"}


@pytest.mark.anyio
async def test_the_guessing_address_pauses_then_locks_the_owner_only_pauses(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock()
    await _fail(store, settings, clock, 5, **ADA)
    paused = await reserve_login_attempt(store, settings, clock, **ADA)
    assert paused == ThrottleVerdict(False, 1.0, T0 + 1)
    # The account's own pause binds every address, but only for as long.
    owner = {"username": "ADA", "ip": "198.51.100.9"}
    assert await reserve_login_attempt(store, settings, clock, **owner) == paused
    for expected_pause in (1, 2, 4, 8, 16):
        clock.now += expected_pause
        assert await _attempt(store, settings, clock, **ADA)
    # Ten failures from one address: that address is locked out of the account.
    locked = await reserve_login_attempt(store, settings, clock, **ADA)
    assert locked.retry_at == clock.now + settings.login_lock_duration == clock.now + 900
    # The owner, from another address, waits only the account's pause (32 s here).
    account_pause = await reserve_login_attempt(store, settings, clock, **owner)
    assert account_pause == ThrottleVerdict(False, 32.0, clock.now + 32)
    clock.now += 32
    assert await _attempt(store, settings, clock, **owner)
    clock.now += 899 - 32
    assert not await _attempt(store, settings, clock, **ADA)
    clock.now += 1
    assert await _attempt(store, settings, clock, **ADA)


@pytest.mark.anyio
async def test_many_addresses_guessing_one_account_pause_it_at_most_60_seconds(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock()
    for i in range(14):  # one every minute, within the 15-minute window
        assert await _attempt(store, settings, clock, username="ada", ip=f"203.0.113.{i}")
        clock.now += 60
    [account] = await store.get_login_counters([account_key("ada")], clock.now)
    assert account.failures == 14 and account.locked_until is None
    assert await _attempt(store, settings, clock, username="ada", ip="198.51.100.9")
    refused = await reserve_login_attempt(
        store, settings, clock, username="ada", ip="198.51.100.10"
    )
    assert refused == ThrottleVerdict(False, 60.0, clock.now + 60)


@pytest.mark.anyio
async def test_failures_outside_the_window_are_forgotten(store: Store, settings: Settings) -> None:
    clock = FakeClock()
    await _fail(store, settings, clock, 4, **ADA)
    clock.now += settings.login_failure_window
    await _fail(store, settings, clock, 5, **ADA)


@pytest.mark.anyio
async def test_success_clears_the_account_and_gives_the_address_its_attempt_back(
    store: Store, settings: Settings
) -> None:
    settings = replace(settings, login_max_failures_per_ip=6)
    clock = FakeClock()
    await _fail(store, settings, clock, 5, **ADA)
    await record_login_success(store, settings, clock, **ADA)
    keys = [pair_key("ada", ADA["ip"]), ip_key(ADA["ip"]), account_key("ada")]
    [address] = await store.get_login_counters(keys, clock.now)
    assert (address.key, address.failures) == (ip_key(ADA["ip"]), 4)
    await _fail(store, settings, clock, 2, username="bob", ip=ADA["ip"])
    # Six failures from the address: it pauses, for every account.
    from_there = await reserve_login_attempt(store, settings, clock, **ADA)
    assert from_there == ThrottleVerdict(False, 1.0, T0 + 1)
    assert await _attempt(store, settings, clock, username="ada", ip="192.0.2.2")
    # A lone successful attempt leaves nothing behind.
    fresh = {"username": "carol", "ip": "192.0.2.3"}
    await _fail(store, settings, clock, 1, **fresh)
    await record_login_success(store, settings, clock, **fresh)
    keys = [pair_key("carol", fresh["ip"]), ip_key(fresh["ip"]), account_key("carol")]
    assert await store.get_login_counters(keys, clock.now) == []


@pytest.mark.anyio
async def test_one_address_trying_many_accounts_is_throttled(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock()
    for i in range(settings.login_max_failures_per_ip):
        assert await _attempt(store, settings, clock, username=f"user{i}", ip="192.0.2.50")
    assert not await _attempt(store, settings, clock, username="someone", ip="192.0.2.50")
    assert await _attempt(store, settings, clock, username="someone", ip="192.0.2.51")


@pytest.mark.anyio
async def test_parallel_attempts_on_two_replicas_reserve_at_most_the_allowance(
    settings: Settings,
) -> None:
    """Twenty attempts at once through two connections: five are counted, the rest refused."""
    async with open_stores(settings.database_url, 2) as stores:
        await stores[0].migrate()
        clock = FakeClock()
        verdicts = await asyncio.gather(
            *(reserve_login_attempt(stores[i % 2], settings, clock, **ADA) for i in range(20))
        )
        assert sum(v.allowed for v in verdicts) == settings.login_max_failures == 5
        assert all(v.retry_at == T0 + 1 for v in verdicts if not v.allowed)
        counters = await stores[1].get_login_counters(
            [account_key("ada"), pair_key("ada", ADA["ip"]), ip_key(ADA["ip"])], clock.now
        )
        assert [c.failures for c in counters] == [5, 5, 5]
        assert await clear_account(stores[0], "Ada")
        assert not await clear_account(stores[0], "Ada")
        # The account and its pairs are forgotten; the address keeps its count.
        left = await stores[1].get_login_counters(
            [account_key("ada"), pair_key("ada", ADA["ip"]), ip_key(ADA["ip"])], clock.now
        )
        assert [c.key for c in left] == [ip_key(ADA["ip"])]
        assert await _attempt(stores[1], settings, clock, **ADA)


@pytest.mark.anyio
async def test_delete_expired_login_failures_in_batches(store: Store, settings: Settings) -> None:
    clock = FakeClock()
    for i in range(4):
        assert await _attempt(store, settings, clock, username=f"old{i}", ip="192.0.2.9")
    clock.now += 600
    assert await _attempt(store, settings, clock, username="new", ip="192.0.2.10")
    after = T0 + settings.login_failure_window
    # Four accounts, four pairs and one address expired; the newer three keys live on.
    assert await store.delete_expired_login_failures(after, 4) == 4
    assert await store.delete_expired_login_failures(after, 4) == 4
    assert await store.delete_expired_login_failures(after, 4) == 1
    assert await store.delete_expired_login_failures(after, 4) == 0
    live = await store.get_login_counters([account_key("new"), account_key("old0")], after)
    assert [c.key for c in live] == [account_key("new")]
