"""The login throttle: its pure rules, and the counters in both stores."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.login_throttle import (
    account_key,
    clear_account,
    ip_key,
    login_allowed,
    record_login_failure,
    record_login_success,
)
from idp.store import make_store
from idp.store.base import LoginCounter, Store
from idp.throttle_policy import ThrottlePolicy, ThrottleVerdict, delay_after, verdict
from tests.clocks import T0, FakeClock

POLICY = ThrottlePolicy(max_failures=5, window=900, lock_duration=900)


def counter(failures: int, last: float = T0, locked_until: float | None = None) -> LoginCounter:
    return LoginCounter("k", failures, T0 - 100, last, locked_until, T0 + 800)


def test_delays_double_after_the_allowance_and_are_capped() -> None:
    assert [delay_after(n, 5) for n in range(1, 11)] == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert delay_after(40, 5) == 60


def test_verdict_of_one_counter() -> None:
    assert verdict(None, T0, POLICY).allowed
    assert verdict(counter(4), T0, POLICY).allowed
    assert verdict(counter(6), T0 + 1, POLICY) == ThrottleVerdict(False, 1.0, T0 + 2)
    assert verdict(counter(6), T0 + 2, POLICY).allowed
    locked = verdict(counter(10, locked_until=T0 + 900), T0 + 100, POLICY)
    assert locked == ThrottleVerdict(False, 800.0, T0 + 900)
    expired = LoginCounter("k", 10, T0, T0, T0 + 900, T0 + 900)
    assert verdict(expired, T0 + 900, POLICY).allowed


def test_username_and_address_normalisation() -> None:
    assert account_key("Ada") == account_key(" ada ") == account_key("\uff21\uff24\uff21")
    assert account_key("ada") != account_key("bob")
    assert "ada" not in account_key("ada")
    assert ip_key("2001:db8::1") == ip_key("2001:db8::ffff:1") == "ip:2001:db8::/64"
    assert ip_key("::ffff:192.0.2.7") == ip_key("192.0.2.7") == "ip:192.0.2.7"
    assert ip_key("not an address").startswith("ip:other:")


async def _fail(store: Store, settings: Settings, clock: FakeClock, n: int, **who: str) -> None:
    for _ in range(n):
        await record_login_failure(store, settings, clock, **who)


ADA = {"username": "ada", "ip": "192.0.2.1"}


@pytest.mark.anyio
async def test_account_pauses_then_locks_then_starts_afresh(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock()
    await _fail(store, settings, clock, 4, **ADA)
    assert (await login_allowed(store, settings, clock, **ADA)).allowed
    await _fail(store, settings, clock, 1, **ADA)
    paused = await login_allowed(store, settings, clock, **ADA)
    assert paused == ThrottleVerdict(False, 1.0, T0 + 1)
    # The pause binds every address: it is the account that is throttled.
    assert not (
        await login_allowed(store, settings, clock, username="ADA", ip="198.51.100.9")
    ).allowed
    for expected_pause in (1, 2, 4, 8, 16):
        clock.now += expected_pause
        assert (await login_allowed(store, settings, clock, **ADA)).allowed
        await _fail(store, settings, clock, 1, **ADA)
    # Ten failures: locked for IDP_LOGIN_LOCK_DURATION.
    locked = await login_allowed(store, settings, clock, **ADA)
    assert locked.retry_at == clock.now + settings.login_lock_duration == clock.now + 900
    clock.now += 899
    assert not (await login_allowed(store, settings, clock, **ADA)).allowed
    clock.now += 1
    assert (await login_allowed(store, settings, clock, **ADA)).allowed
    await _fail(store, settings, clock, 1, **ADA)
    assert (await login_allowed(store, settings, clock, **ADA)).allowed


@pytest.mark.anyio
async def test_failures_outside_the_window_are_forgotten(store: Store, settings: Settings) -> None:
    clock = FakeClock()
    await _fail(store, settings, clock, 4, **ADA)
    clock.now += settings.login_failure_window
    await _fail(store, settings, clock, 4, **ADA)
    assert (await login_allowed(store, settings, clock, **ADA)).allowed


@pytest.mark.anyio
async def test_success_clears_the_account_but_not_the_address(
    store: Store, settings: Settings
) -> None:
    settings = replace(settings, login_max_failures_per_ip=6)
    clock = FakeClock()
    await _fail(store, settings, clock, 6, **ADA)
    await record_login_success(store, settings, clock, **ADA)
    # The account is clear, the address still pauses (six failures from it).
    verdict_now = await login_allowed(store, settings, clock, **ADA)
    assert verdict_now == ThrottleVerdict(False, 1.0, T0 + 1)
    assert (await login_allowed(store, settings, clock, username="ada", ip="192.0.2.2")).allowed


@pytest.mark.anyio
async def test_one_address_trying_many_accounts_is_throttled(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock()
    for i in range(settings.login_max_failures_per_ip):
        await record_login_failure(store, settings, clock, username=f"user{i}", ip="192.0.2.50")
    fresh = await login_allowed(store, settings, clock, username="someone", ip="192.0.2.50")
    assert not fresh.allowed
    assert (
        await login_allowed(store, settings, clock, username="someone", ip="192.0.2.51")
    ).allowed


@pytest.mark.anyio
async def test_replicas_share_counters_and_count_atomically(settings: Settings) -> None:
    stores = [make_store(settings.database_url) for _ in range(2)]
    for each in stores:
        await each.open()
    await stores[0].migrate()
    try:
        clock = FakeClock()
        await asyncio.gather(
            *(record_login_failure(stores[i % 2], settings, clock, **ADA) for i in range(12))
        )
        [account] = await stores[1].get_login_counters([account_key("ada")], clock.now)
        assert account.failures == 12
        assert account.locked_until == T0 + settings.login_lock_duration
        assert not (await login_allowed(stores[1], settings, clock, **ADA)).allowed
        assert await clear_account(stores[0], "Ada")
        assert not await clear_account(stores[0], "Ada")
        assert (await login_allowed(stores[1], settings, clock, **ADA)).allowed
    finally:
        for each in stores:
            await each.close()


@pytest.mark.anyio
async def test_delete_expired_login_failures_in_batches(store: Store, settings: Settings) -> None:
    clock = FakeClock()
    for i in range(4):
        await record_login_failure(store, settings, clock, username=f"old{i}", ip="192.0.2.9")
    clock.now += 600
    await record_login_failure(store, settings, clock, username="new", ip="192.0.2.10")
    after = T0 + settings.login_failure_window
    assert await store.delete_expired_login_failures(after, 3) == 3
    assert await store.delete_expired_login_failures(after, 3) == 2
    assert await store.delete_expired_login_failures(after, 3) == 0
    live = await store.get_login_counters([account_key("new"), account_key("old0")], after)
    assert [c.key for c in live] == [account_key("new")]
