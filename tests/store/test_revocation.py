"""Revocation in the store: revoked access tokens (by jti), and ended grants, sessions, users
and clients, which one check answers for (RFC 7009)."""

from __future__ import annotations

import pytest

from idp.store.base import Store, UserRecord
from tests.support.records import a_bare_client, a_refresh_token


@pytest.mark.anyio
async def test_store_records_a_revoked_jti_once(store: Store) -> None:
    await store.create_client(a_bare_client("c1"))
    assert not await store.access_token_revoked("j1", "c1")
    assert await store.revoke_access_token("j1", "c1", 100.0, 200.0) is True
    assert await store.revoke_access_token("j1", "c1", 150.0, 200.0) is False
    assert await store.access_token_revoked("j1", "c1")
    assert not await store.access_token_revoked("j2", "c1")
    assert await store.delete_expired_revoked_access_tokens(199.0, 10) == 0
    assert await store.delete_expired_revoked_access_tokens(200.0, 10) == 1
    assert not await store.access_token_revoked("j1", "c1")


@pytest.mark.anyio
async def test_store_ends_grants_sessions_and_clients(store: Store) -> None:
    """One statement answers for the jti, the grant, the session and the client."""
    await store.create_client(a_bare_client("c1"))
    await store.create_user(UserRecord("u1", "u1", "$argon2id$x", None, None, 1.0))
    for family, sid, offline in (("g1", "s1", False), ("g2", "s1", True), ("g3", "s2", False)):
        await store.create_refresh_token(a_refresh_token(family, sid, offline))
    assert not await store.access_token_revoked("j", "c1", ("g1", "s1"))
    assert await store.revoke_refresh_family("g1", 100.0) == 1
    assert await store.access_token_revoked("j", "c1", ("g1",))
    assert await store.access_token_revoked("j", "c1", ("other", "g1"))
    assert not await store.access_token_revoked("j", "c1", ("g2", "s1"))
    assert await store.grant_revoked(("g1",)) and await store.grant_revoked(("s1", "g1"))
    assert not await store.grant_revoked(("g2", "s1")) and not await store.grant_revoked(())
    # A session's end covers its session-bound grants (tokens carrying its sid).
    assert await store.revoke_session_refresh_tokens("s1", 110.0) == 0  # g1 already revoked
    assert await store.access_token_revoked("j", "c1", ("g2", "s1"))
    assert not await store.access_token_revoked("j", "c1", ("g2",))  # offline: no sid
    # A user's end covers every family of theirs, offline ones included.
    assert await store.revoke_user_refresh_tokens("u1", 120.0) == 2
    assert await store.access_token_revoked("j", "c1", ("g2",))
    assert await store.access_token_revoked("j", "c1", ("g3",))
    # A deleted client's tokens are revoked whatever they carry.
    await store.create_client(a_bare_client("c2"))
    assert not await store.access_token_revoked("j", "c1")
    assert await store.delete_client("c1")
    assert await store.access_token_revoked("j", "c1")
    assert not await store.access_token_revoked("j", "c2")
    # Rows go once every access token they cover has expired, oldest first.
    assert await store.delete_revoked_grants_before(99.0, 10) == 0
    assert await store.delete_revoked_grants_before(110.0, 10) == 2  # g1, s1
    assert await store.delete_revoked_grants_before(1000.0, 1) == 1  # g2, g3 or user:u1
    assert await store.delete_revoked_grants_before(1000.0, 10) == 2
    assert not await store.access_token_revoked("j", "c2", ("g1", "s1", "g2", "g3"))


@pytest.mark.anyio
async def test_ending_a_users_access_covers_every_token_issued_to_them_until_then(
    store: Store,
) -> None:
    """Even a grant with no refresh token and no live session: the user's own row ends it,
    for tokens issued up to that moment, so enabling the account again revives none."""
    await store.create_client(a_bare_client("c1"))
    await store.create_user(UserRecord("u1", "u1", "$argon2id$x", None, None, 1.0))
    before = {"user_id": "u1", "issued_at": 100.0}
    assert not await store.access_token_revoked("j", "c1", ("g9",), **before)
    assert await store.revoke_user_refresh_tokens("u1", 120.0) == 0
    assert await store.access_token_revoked("j", "c1", ("g9",), **before)
    assert await store.access_token_revoked("j", "c1", (), user_id="u1", issued_at=120.0)
    after = {"user_id": "u1", "issued_at": 130.0}  # signed in again once enabled
    assert not await store.access_token_revoked("j", "c1", ("g10",), **after)
    assert not await store.access_token_revoked("j", "c1", ("g9",), user_id="u2", issued_at=1.0)
    assert not await store.access_token_revoked("j", "c1", ("g9",))  # a client's own token
    # Disabled again: the later end counts, and covers the newer token too.
    assert await store.revoke_user_refresh_tokens("u1", 140.0) == 0
    assert await store.access_token_revoked("j", "c1", ("g10",), **after)
    assert await store.revoke_user_refresh_tokens("u1", 125.0) == 0  # never moves back
    assert await store.access_token_revoked("j", "c1", ("g10",), **after)
    assert await store.delete_revoked_grants_before(139.0, 10) == 0
    assert await store.delete_revoked_grants_before(140.0, 10) == 1
    assert not await store.access_token_revoked("j", "c1", ("g10",), **after)
