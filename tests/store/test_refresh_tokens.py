"""Refresh-token storage and rotation rules, on both stores (RFC 6749 section 6, RFC 9700 4.14)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.oauth.refresh_tokens import (
    RefreshTokenRefused,
    find_refresh_token,
    hash_refresh_token,
    issue_refresh_token,
    redeem_refresh_token,
    revoke_refresh_family,
    revoke_session_refresh_tokens,
    revoke_user_refresh_tokens,
)
from idp.store.base import RotationOutcome, Store, UserRecord
from tests.support.clocks import T0, FakeClock
from tests.support.records import a_client
from tests.support.stores import open_stores

pytestmark = pytest.mark.anyio


async def _setup(store: Store, *, disabled: bool = False) -> None:
    await store.create_client(a_client())
    await store.create_client(a_client("other", "c2"))
    await store.create_user(
        UserRecord("u1", "ada", "$argon2id$x", None, None, 1.0, disabled=disabled)
    )


async def _issue(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    *,
    family: str = "fam1",
    sid: str | None = "sid1",
    offline: bool = False,
) -> str:
    return await issue_refresh_token(
        store,
        settings,
        clock,
        client_id="c1",
        user_id="u1",
        scope=["openid", "read", "write"],
        sid=sid,
        auth_time=T0 - 5,
        offline=offline,
        family_id=family,
    )


async def _refused(
    store: Store, settings: Settings, clock: FakeClock, token: str, client_id: str = "c1"
) -> RotationOutcome:
    with pytest.raises(RefreshTokenRefused) as caught:
        await redeem_refresh_token(store, settings, clock, token=token, client_id=client_id)
    return caught.value.outcome


async def _live(store: Store, token: str) -> bool:
    row = await find_refresh_token(store, token)
    return row is not None and row.revoked_at is None and row.rotated_at is None


async def test_issue_stores_only_the_hash(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    token = await _issue(store, settings, clock)
    assert len(token) >= 43
    row = await store.get_refresh_token(hash_refresh_token(token))
    assert row is not None
    assert row.token_hash != token.encode()
    assert token not in repr(row)
    assert (row.family_id, row.generation, row.parent_id) == ("fam1", 0, None)
    assert (row.client_id, row.user_id, row.sid, row.offline) == ("c1", "u1", "sid1", False)
    assert row.scope == ("openid", "read", "write")
    assert row.auth_time == T0 - 5
    assert row.expires_at == T0 + settings.refresh_token_ttl == T0 + 30 * 86400


async def test_rotation_consumes_and_links_successor(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    first = await _issue(store, settings, clock)
    clock.now += 100
    redeemed = await redeem_refresh_token(store, settings, clock, token=first, client_id="c1")
    assert redeemed.token != first
    successor = redeemed.record
    assert successor.generation == 1
    assert successor.family_id == "fam1"
    assert successor.scope == ("openid", "read", "write")
    assert successor.sid == "sid1" and successor.auth_time == T0 - 5
    assert successor.expires_at == clock.now + settings.refresh_token_ttl
    old = await find_refresh_token(store, first)
    assert old is not None and old.rotated_at == clock.now and old.revoked_at is None
    assert successor.parent_id == old.id
    assert await _live(store, redeemed.token)


async def test_two_generations_old_token_revokes_family(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    t0 = await _issue(store, settings, clock)
    t1 = (await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")).token
    t2 = (await redeem_refresh_token(store, settings, clock, token=t1, client_id="c1")).token
    # Still within the grace period, but two generations behind the newest.
    assert await _refused(store, settings, clock, t0) is RotationOutcome.REUSED
    assert not await _live(store, t2)
    assert await _refused(store, settings, clock, t2) is RotationOutcome.REVOKED
    assert await _refused(store, settings, clock, t1) is RotationOutcome.REVOKED


async def test_predecessor_within_grace_gets_a_sibling(store: Store, settings: Settings) -> None:
    assert settings.refresh_reuse_grace == 3
    await _setup(store)
    clock = FakeClock()
    t0 = await _issue(store, settings, clock)
    tab_a = await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")
    clock.now += 2.9
    tab_b = await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")
    assert tab_b.token != tab_a.token
    assert tab_b.record.generation == tab_a.record.generation == 1
    assert tab_b.record.parent_id == tab_a.record.parent_id
    # Both tabs carry on with their own live token.
    assert await _live(store, tab_a.token) and await _live(store, tab_b.token)
    a2 = await redeem_refresh_token(store, settings, clock, token=tab_a.token, client_id="c1")
    b2 = await redeem_refresh_token(store, settings, clock, token=tab_b.token, client_id="c1")
    assert a2.record.generation == b2.record.generation == 2


async def test_predecessor_after_grace_revokes_family(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    t0 = await _issue(store, settings, clock)
    t1 = (await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")).token
    clock.now += 3
    assert await _refused(store, settings, clock, t0) is RotationOutcome.REUSED
    assert await _refused(store, settings, clock, t1) is RotationOutcome.REVOKED


async def test_grace_ends_when_the_successor_moves_on(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    t0 = await _issue(store, settings, clock)
    t1 = (await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")).token
    await redeem_refresh_token(store, settings, clock, token=t1, client_id="c1")
    clock.now += 0.5
    # t1 is now the immediate predecessor and within grace: allowed; t0 is not.
    assert (await redeem_refresh_token(store, settings, clock, token=t1, client_id="c1")).token
    assert await _refused(store, settings, clock, t0) is RotationOutcome.REUSED


async def test_grace_zero_refuses_a_loser_whose_clock_read_came_first(
    store: Store, settings: Settings
) -> None:
    settings = replace(settings, refresh_reuse_grace=0)
    await _setup(store)
    clock = FakeClock()
    token = await _issue(store, settings, clock)
    clock.now += 10
    await redeem_refresh_token(store, settings, clock, token=token, client_id="c1")
    clock.now -= 5
    assert await _refused(store, settings, clock, token) is RotationOutcome.REUSED


async def test_grace_zero_concurrent_refreshes_exactly_one_wins(settings: Settings) -> None:
    settings = replace(settings, refresh_reuse_grace=0)
    async with open_stores(settings.database_url, 4) as stores:
        await stores[0].migrate()
        await _setup(stores[0])
        clock = FakeClock()
        token = await _issue(stores[0], settings, clock)
        results = await asyncio.gather(
            *(
                redeem_refresh_token(each, settings, clock, token=token, client_id="c1")
                for each in stores
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, RefreshTokenRefused)]
        assert len(winners) == 1, results
        assert len(losers) == 3, results
        assert {r.outcome for r in losers} <= {RotationOutcome.REUSED, RotationOutcome.REVOKED}
        # The reuse revoked the family, the winner's successor included.
        assert not await _live(stores[0], winners[0].token)


async def test_grace_concurrent_refreshes_all_succeed(settings: Settings) -> None:
    async with open_stores(settings.database_url, 3) as stores:
        await stores[0].migrate()
        await _setup(stores[0])
        clock = FakeClock()
        token = await _issue(stores[0], settings, clock)
        results = await asyncio.gather(
            *(
                redeem_refresh_token(each, settings, clock, token=token, client_id="c1")
                for each in stores
            )
        )
        assert len({r.token for r in results}) == 3
        assert {r.record.generation for r in results} == {1}
        for result in results:
            assert await _live(stores[0], result.token)


async def test_refusals_leave_the_token_alone(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    token = await _issue(store, settings, clock)
    assert await _refused(store, settings, clock, "not-a-token") is RotationOutcome.UNKNOWN
    assert await _refused(store, settings, clock, token, "c2") is RotationOutcome.WRONG_CLIENT
    assert await _refused(store, settings, clock, token, "nope") is RotationOutcome.WRONG_CLIENT
    assert await _live(store, token)
    clock.now += settings.refresh_token_ttl
    assert await _refused(store, settings, clock, token) is RotationOutcome.EXPIRED
    clock.now -= 1
    assert (await redeem_refresh_token(store, settings, clock, token=token, client_id="c1")).token


async def test_disabled_user_is_refused(store: Store, settings: Settings) -> None:
    await _setup(store, disabled=True)
    clock = FakeClock()
    token = await _issue(store, settings, clock)
    assert await _refused(store, settings, clock, token) is RotationOutcome.USER_DISABLED
    assert await _live(store, token)


async def test_revoke_family(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    t0 = await _issue(store, settings, clock)
    t1 = (await redeem_refresh_token(store, settings, clock, token=t0, client_id="c1")).token
    other = await _issue(store, settings, clock, family="fam2")
    assert await revoke_refresh_family(store, "fam1", clock=clock) == 2
    assert await revoke_refresh_family(store, "fam1", clock=clock) == 0
    assert await _refused(store, settings, clock, t1) is RotationOutcome.REVOKED
    assert await _live(store, other)


async def test_revoke_session_spares_offline_tokens(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    online = await _issue(store, settings, clock, family="f1", sid="s1")
    offline = await _issue(store, settings, clock, family="f2", sid="s1", offline=True)
    elsewhere = await _issue(store, settings, clock, family="f3", sid="s2")
    assert await revoke_session_refresh_tokens(store, "s1", clock=clock) == 1
    assert not await _live(store, online)
    assert await _live(store, offline)
    assert await _live(store, elsewhere)


async def test_revoke_user_takes_every_token(store: Store, settings: Settings) -> None:
    await _setup(store)
    await store.create_user(UserRecord("u2", "bob", "$argon2id$x", None, None, 1.0))
    clock = FakeClock()
    online = await _issue(store, settings, clock, family="f1")
    offline = await _issue(store, settings, clock, family="f2", offline=True)
    bobs = await issue_refresh_token(
        store,
        settings,
        clock,
        client_id="c1",
        user_id="u2",
        scope=["read"],
        sid=None,
        auth_time=T0,
        offline=True,
        family_id="f3",
    )
    assert await revoke_user_refresh_tokens(store, "u1", clock=clock) == 2
    assert not await _live(store, online) and not await _live(store, offline)
    assert await _live(store, bobs)


async def test_deleting_the_client_deletes_its_tokens(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    token = await _issue(store, settings, clock)
    assert await store.delete_client("c1")
    assert await find_refresh_token(store, token) is None


async def test_delete_expired_refresh_tokens_in_batches(store: Store, settings: Settings) -> None:
    await _setup(store)
    clock = FakeClock()
    expired = [await _issue(store, settings, clock, family=f"old{i}") for i in range(5)]
    clock.now += 1000
    live = await _issue(store, settings, clock, family="new")
    after_first_expiry = T0 + settings.refresh_token_ttl
    assert await store.delete_expired_refresh_tokens(after_first_expiry, 3) == 3
    assert await store.delete_expired_refresh_tokens(after_first_expiry, 3) == 2
    assert await store.delete_expired_refresh_tokens(after_first_expiry, 3) == 0
    for token in expired:
        assert await find_refresh_token(store, token) is None
    assert await _live(store, live)
