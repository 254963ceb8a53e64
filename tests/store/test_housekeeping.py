"""Housekeeping in the store: expired sessions, codes, refresh tokens, login counters, revoked
access tokens and revoked grants go in batches; live ones stay."""

from __future__ import annotations

import pytest

from idp.config import DEFAULT_LEEWAY, Settings
from idp.sso.throttle import account_key
from idp.store.base import Store
from idp.store.housekeeping import Collector, collect, store_collectors
from tests.support.clocks import T0, FakeClock
from tests.support.housekeeping import add_client_and_user, count_refresh_tokens, seed_expiring_rows
from tests.support.records import a_code, a_session, a_user, a_web_client


@pytest.mark.anyio
async def test_collect_deletes_expired_rows_in_batches(store: Store, settings: Settings) -> None:
    await add_client_and_user(store)
    clock = FakeClock()
    old = await seed_expiring_rows(store, settings, clock, 11)
    clock.now = T0 + settings.refresh_token_ttl - 1
    new = await seed_expiring_rows(store, settings, clock, 3)
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
        "webauthn_challenges": 0,
        "pushed_authorization_requests": 0,
        "client_assertions": 0,
        "dpop_proofs": 0,
        "initial_access_tokens": 0,
        "device_codes": 0,
    }
    assert [d for n, d in calls if n == "refresh_tokens"] == [4, 4, 3]
    assert [d for n, d in calls if n == "revoked_access_tokens"] == [4, 4, 3]
    assert [d for n, d in calls if n == "revoked_grants"] == [4, 4, 3]
    assert not await store.access_token_revoked(f"j{T0}-0", "c1")
    assert await store.access_token_revoked(f"j{clock.now}-2", "c1")
    assert not await store.access_token_revoked("j", "c1", (f"f{T0}-0",))
    assert await store.access_token_revoked("j", "c1", (f"f{clock.now}-2",))
    assert [d for n, d in calls if n == "login_failures"] == [4, 4, 4, 4, 4, 4, 4, 4, 1]
    assert await count_refresh_tokens(store, old) == 0
    assert await count_refresh_tokens(store, new) == 3
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
        "webauthn_challenges": 0,
        "pushed_authorization_requests": 0,
        "client_assertions": 0,
        "dpop_proofs": 0,
        "initial_access_tokens": 0,
        "device_codes": 0,
    }


@pytest.mark.anyio
async def test_a_revoked_grant_stays_until_its_access_tokens_have_expired(
    store: Store, settings: Settings
) -> None:
    """Its access tokens were all issued before it ended: they expire within the access-token
    lifetime plus the leeway a bearer check allows."""
    await add_client_and_user(store)
    clock = FakeClock()
    await seed_expiring_rows(store, settings, clock, 1)
    collectors = store_collectors(store, settings.access_token_ttl)
    last_accepted = T0 + settings.access_token_ttl + DEFAULT_LEEWAY
    assert (await collect(collectors, last_accepted - 1))["revoked_grants"] == 0
    assert await store.access_token_revoked("j", "c1", (f"f{T0}-0",))
    assert (await collect(collectors, last_accepted))["revoked_grants"] == 1
    assert not await store.access_token_revoked("j", "c1", (f"f{T0}-0",))


@pytest.mark.anyio
async def test_collectors_cover_sessions_and_authorization_codes(store: Store) -> None:
    """Expired sessions (idle or absolute) and codes go; live ones stay."""
    await store.create_client(a_web_client())
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
