"""Housekeeping on both stores: expired refresh tokens, login counters, revoked access
tokens and revoked grants go, live ones stay."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.housekeeping import Collector, collect, housekeeping_loop, store_collectors
from idp.login_throttle import account_key, reserve_login_attempt
from idp.oauth.bearer import DEFAULT_LEEWAY
from idp.refresh_tokens import find_refresh_token, issue_refresh_token, revoke_refresh_family
from idp.store import make_store
from idp.store.base import Store, UserRecord
from tests.clocks import T0, FakeClock
from tests.conftest import free_port, start_server, with_store
from tests.test_store import a_client
from tests.test_store_sso import a_client as web_client
from tests.test_store_sso import a_code, a_session, a_user


async def _seed(store: Store, settings: Settings, clock: FakeClock, n: int) -> list[str]:
    """``n`` refresh tokens, ``n`` login counters, ``n`` revoked access tokens and ``n``
    revoked grants at ``clock.now``.

    The revoked access tokens expire when the refresh tokens do; each grant is ended (its
    refresh token revoked) at once, so its row goes an access-token lifetime later.
    """
    tokens = []
    for i in range(n):
        tokens.append(
            await issue_refresh_token(
                store,
                settings,
                clock,
                client_id="c1",
                user_id="u1",
                scope=["read"],
                sid=None,
                auth_time=clock.now,
                offline=False,
                family_id=f"f{clock.now}-{i}",
            )
        )
        await reserve_login_attempt(
            store,
            settings,
            clock,
            username=f"u{clock.now}-{i}",
            ip=f"2001:db8:{int(clock.now) % 65536:x}:{i}::1",
        )
        await store.revoke_access_token(
            f"j{clock.now}-{i}", "c1", clock.now, clock.now + settings.refresh_token_ttl
        )
        await revoke_refresh_family(store, f"f{clock.now}-{i}", clock=clock)
    return tokens


async def _prepare(store: Store) -> None:
    await store.create_client(a_client())
    await store.create_user(UserRecord("u1", "ada", "$argon2id$x", None, None, 1.0))


async def _count(store: Store, tokens: list[str]) -> int:
    return sum([await find_refresh_token(store, t) is not None for t in tokens])


@pytest.mark.anyio
async def test_collect_deletes_expired_rows_in_batches(store: Store, settings: Settings) -> None:
    await _prepare(store)
    clock = FakeClock()
    old = await _seed(store, settings, clock, 11)
    clock.now = T0 + settings.refresh_token_ttl - 1
    new = await _seed(store, settings, clock, 3)
    calls: list[tuple[str, int]] = []

    def counted(name: str, collector: Collector) -> Collector:
        async def run(now: float, limit: int) -> int:
            deleted = await collector(now, limit)
            calls.append((name, deleted))
            return deleted

        return run

    collectors = [
        (name, counted(name, c)) for name, c in store_collectors(store, settings.access_token_ttl)
    ]
    deleted = await collect(collectors, T0 + settings.refresh_token_ttl, batch=4)
    # 11 old tokens and 33 old counters (per account, per address and per both).
    assert deleted == {
        "sessions": 0,
        "authorization_codes": 0,
        "refresh_tokens": 11,
        "login_failures": 33,
        "revoked_access_tokens": 11,
        "revoked_grants": 11,
    }
    assert [d for n, d in calls if n == "refresh_tokens"] == [4, 4, 3]
    assert [d for n, d in calls if n == "revoked_access_tokens"] == [4, 4, 3]
    assert [d for n, d in calls if n == "revoked_grants"] == [4, 4, 3]
    assert not await store.access_token_revoked(f"j{T0}-0", "c1")
    assert await store.access_token_revoked(f"j{clock.now}-2", "c1")
    assert not await store.access_token_revoked("j", "c1", (f"f{T0}-0",))
    assert await store.access_token_revoked("j", "c1", (f"f{clock.now}-2",))
    assert [d for n, d in calls if n == "login_failures"] == [4, 4, 4, 4, 4, 4, 4, 4, 1]
    assert await _count(store, old) == 0
    assert await _count(store, new) == 3
    live = await store.get_login_counters([account_key(f"u{clock.now}-0")], clock.now)
    assert len(live) == 1
    collectors = store_collectors(store, settings.access_token_ttl)
    assert await collect(collectors, T0 + settings.refresh_token_ttl) == {
        "sessions": 0,
        "authorization_codes": 0,
        "refresh_tokens": 0,
        "login_failures": 0,
        "revoked_access_tokens": 0,
        "revoked_grants": 0,
    }


@pytest.mark.anyio
async def test_a_revoked_grant_stays_until_its_access_tokens_have_expired(
    store: Store, settings: Settings
) -> None:
    """Its access tokens were all issued before it ended: they expire within the access-token
    lifetime plus the leeway a bearer check allows."""
    await _prepare(store)
    clock = FakeClock()
    await _seed(store, settings, clock, 1)
    collectors = store_collectors(store, settings.access_token_ttl)
    last_accepted = T0 + settings.access_token_ttl + DEFAULT_LEEWAY
    assert (await collect(collectors, last_accepted - 1))["revoked_grants"] == 0
    assert await store.access_token_revoked("j", "c1", (f"f{T0}-0",))
    assert (await collect(collectors, last_accepted))["revoked_grants"] == 1
    assert not await store.access_token_revoked("j", "c1", (f"f{T0}-0",))


@pytest.mark.anyio
async def test_collectors_cover_sessions_and_authorization_codes(store: Store) -> None:
    """Expired sessions (idle or absolute) and codes go; live ones stay."""
    await store.create_client(web_client())
    await store.create_user(a_user())
    for n in range(3):
        await store.create_session(a_session(bytes([n]), expires_at=100.0 + n))
        await store.create_authorization_code(a_code(bytes([n]), expires_at=100.0 + n))
    await store.create_session(a_session(b"live"))
    await store.create_authorization_code(a_code(b"live", expires_at=500.0))
    deleted = await collect(store_collectors(store, 600), 150.0, batch=2)
    assert (deleted["sessions"], deleted["authorization_codes"]) == (3, 3)
    assert await store.get_session(a_session(b"live").id) is not None
    assert await store.get_session(a_session(bytes([0])).id) is None
    assert await store.consume_authorization_code(a_code(b"live").code_hash, 1.0) is not None


@pytest.mark.anyio
async def test_a_failing_collector_does_not_stop_the_others(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await _prepare(store)
    clock = FakeClock()
    tokens = await _seed(store, settings, clock, 2)

    async def broken(now: float, limit: int) -> int:
        raise ValueError("boom")

    collectors = [("broken", broken), *store_collectors(store, settings.access_token_ttl)]
    with caplog.at_level(logging.ERROR, logger="idp.housekeeping"):
        deleted = await collect(collectors, T0 + settings.refresh_token_ttl)
    assert deleted == {
        "broken": 0,
        "sessions": 0,
        "authorization_codes": 0,
        "refresh_tokens": 2,
        "login_failures": 6,
        "revoked_access_tokens": 2,
        "revoked_grants": 2,
    }
    assert await _count(store, tokens) == 0
    assert "collecting broken failed" in caplog.text


@pytest.mark.anyio
async def test_loop_survives_an_unavailable_store(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await _prepare(store)
    clock = FakeClock(T0 + settings.refresh_token_ttl)
    tokens = await _seed(store, settings, FakeClock(), 3)
    # A store that is not open yet answers StoreUnavailable, as during an outage.
    late = make_store(settings.database_url)
    with caplog.at_level(logging.INFO, logger="idp.housekeeping"):
        task = asyncio.create_task(
            housekeeping_loop(store_collectors(late, settings.access_token_ttl), clock, 0.02)
        )
        try:
            deadline = time.monotonic() + 20
            while "store unavailable" not in caplog.text:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            assert not task.done()
            await late.open()
            while await _count(store, tokens):
                assert time.monotonic() < deadline, "expired tokens were never collected"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await late.close()
    assert caplog.text.count("store unavailable") == 1
    assert "store reachable again" in caplog.text


def test_the_running_service_collects(settings: Settings) -> None:
    server = start_server(replace(settings, housekeeping_interval=1), free_port())
    try:

        async def seed(store: Store) -> tuple[list[str], list[str]]:
            await _prepare(store)
            old = FakeClock(time.time() - settings.refresh_token_ttl - 10)
            return (
                await _seed(store, settings, old, 2),
                await _seed(store, settings, FakeClock(time.time()), 2),
            )

        expired, live = with_store(settings.database_url, seed)
        deadline = time.monotonic() + 30
        while with_store(settings.database_url, lambda s: _count(s, expired)):
            assert time.monotonic() < deadline, "the service never collected expired tokens"
            time.sleep(0.2)
        assert with_store(settings.database_url, lambda s: _count(s, live)) == 2
    finally:
        server.stop()
