"""Passkeys in the store: user handles, credentials, the forward-only counter, challenges,
and the account page's reads and revocations (live sessions, consents)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from idp.store.base import AuditEntry, Conflict, Store
from tests.support.records import (
    a_challenge,
    a_passkey,
    a_refresh_token,
    a_session,
    a_user,
    a_web_client,
)

pytestmark = pytest.mark.anyio


async def test_user_handle_is_set_once_and_finds_its_user(seeded: Store) -> None:
    assert await seeded.get_webauthn_user_handle("u1") is None
    first = await seeded.ensure_webauthn_user_handle("u1", b"h" * 32)
    again = await seeded.ensure_webauthn_user_handle("u1", b"x" * 32)
    assert first == again == b"h" * 32
    assert await seeded.get_webauthn_user_handle("u1") == b"h" * 32
    assert await seeded.get_user_id_by_webauthn_handle(b"h" * 32) == "u1"
    assert await seeded.get_user_id_by_webauthn_handle(b"x" * 32) is None


async def test_passkeys_are_listed_per_user_and_removed_only_by_their_owner(seeded: Store) -> None:
    await seeded.create_user(a_user("u2", "bob"))
    mine = a_passkey(b"cred-1")
    second = a_passkey(b"cred-2", created_at=20.0, name="Phone")
    theirs = a_passkey(b"cred-3", user_id="u2")
    audit = AuditEntry(at=10.0, actor="alice", action="passkey.add", target="u1")
    await seeded.add_passkey(mine, audit)
    await seeded.add_passkey(second)
    await seeded.add_passkey(theirs)
    assert await seeded.list_passkeys("u1") == [mine, second]
    assert await seeded.get_passkey(b"cred-3") == theirs
    with pytest.raises(Conflict):
        await seeded.add_passkey(a_passkey(b"cred-1", user_id="u2"))

    assert not await seeded.delete_passkey("u1", b"cred-3")
    assert await seeded.get_passkey(b"cred-3") == theirs
    removed = AuditEntry(at=11.0, actor="alice", action="passkey.remove", target="u1")
    assert await seeded.delete_passkey("u1", b"cred-2", removed)
    assert not await seeded.delete_passkey("u1", b"cred-2", removed)
    assert await seeded.list_passkeys("u1") == [mine]
    actions = [entry.action for entry in await seeded.list_audit()]
    assert actions == ["passkey.add", "passkey.remove"]


async def test_counter_moves_forward_only(seeded: Store) -> None:
    await seeded.add_passkey(a_passkey(b"cred-1", sign_count=5))
    assert not await seeded.record_passkey_use(b"cred-1", 5, True, 30.0)
    assert not await seeded.record_passkey_use(b"cred-1", 4, True, 30.0)
    assert not await seeded.record_passkey_use(b"cred-1", 0, True, 30.0)
    stored = await seeded.get_passkey(b"cred-1")
    assert stored is not None and stored.sign_count == 5 and stored.last_used_at is None

    assert await seeded.record_passkey_use(b"cred-1", 6, True, 31.0)
    stored = await seeded.get_passkey(b"cred-1")
    assert stored == replace(a_passkey(), sign_count=6, backed_up=True, last_used_at=31.0)
    assert not await seeded.record_passkey_use(b"unknown", 9, False, 31.0)


async def test_a_credential_without_a_counter_stays_at_zero(seeded: Store) -> None:
    await seeded.add_passkey(a_passkey(b"cred-0", sign_count=0))
    assert await seeded.record_passkey_use(b"cred-0", 0, False, 40.0)
    assert await seeded.record_passkey_use(b"cred-0", 0, False, 41.0)
    assert await seeded.record_passkey_use(b"cred-0", 3, False, 42.0)
    assert not await seeded.record_passkey_use(b"cred-0", 0, False, 43.0)


async def test_concurrent_uses_of_one_counter_value_store_it_once(seeded: Store) -> None:
    await seeded.add_passkey(a_passkey(b"cred-1", sign_count=5))
    results = await asyncio.gather(
        *(seeded.record_passkey_use(b"cred-1", 6, False, 50.0) for _ in range(8))
    )
    assert results.count(True) == 1


async def test_challenge_is_consumed_once_and_not_after_expiry(seeded: Store) -> None:
    await seeded.create_webauthn_challenge(a_challenge("ch-1"))
    await seeded.create_webauthn_challenge(a_challenge("ch-2", user_id="u1", purpose="register"))
    results = await asyncio.gather(
        *(seeded.consume_webauthn_challenge("ch-1", 150.0) for _ in range(6))
    )
    assert [r for r in results if r is not None] == [a_challenge("ch-1")]
    assert await seeded.consume_webauthn_challenge("ch-1", 150.0) is None
    assert await seeded.consume_webauthn_challenge("ch-2", 200.0) is None
    assert await seeded.consume_webauthn_challenge("ch-2", 150.0) is None  # it went even so


async def test_expired_challenges_are_collected(seeded: Store) -> None:
    await seeded.create_webauthn_challenge(a_challenge("old", expires_at=120.0))
    await seeded.create_webauthn_challenge(a_challenge("new", expires_at=300.0))
    assert await seeded.delete_expired_webauthn_challenges(150.0, 10) == 1
    assert await seeded.consume_webauthn_challenge("new", 150.0) is not None


async def test_deleting_a_user_removes_their_passkeys_and_handle(seeded: Store) -> None:
    await seeded.ensure_webauthn_user_handle("u1", b"h" * 32)
    await seeded.add_passkey(a_passkey())
    assert await seeded.delete_user("u1")
    assert await seeded.get_passkey(b"cred-1") is None
    assert await seeded.get_user_id_by_webauthn_handle(b"h" * 32) is None


async def test_live_sessions_of_a_user_newest_first(seeded: Store) -> None:
    await seeded.create_user(a_user("u2", "bob"))
    older = a_session(b"a", created_at=100.0)
    newer = a_session(b"b", created_at=110.0)
    idle = a_session(b"c", idle_expires_at=150.0)
    ended = a_session(b"d")
    other = a_session(b"e", user_id="u2")
    for session in (older, newer, idle, ended, other):
        await seeded.create_session(session)
    await seeded.end_session(ended.id, 120.0)
    live = await seeded.list_user_sessions("u1", 160.0)
    assert [s.sid for s in live] == [newer.sid, older.sid]


async def test_revoking_a_consent_ends_its_refresh_tokens(seeded: Store) -> None:
    await seeded.create_client(a_web_client("c1"))
    await seeded.save_consent("u1", "web", ("openid", "email"), 10.0)
    await seeded.save_consent("u1", "c1", ("openid",), 20.0)
    consents = await seeded.list_consents("u1")
    assert [(c.client_id, c.scope, c.granted_at) for c in consents] == [
        ("web", ("openid", "email"), 10.0),
        ("c1", ("openid",), 20.0),
    ]
    token = a_refresh_token("fam", "sid-1", offline=True)
    await seeded.create_refresh_token(token)

    audit = AuditEntry(at=30.0, actor="alice", action="consent.revoke", target="c1")
    assert await seeded.revoke_consent("u1", "c1", 30.0, audit)
    assert not await seeded.revoke_consent("u1", "c1", 31.0, audit)
    assert [c.client_id for c in await seeded.list_consents("u1")] == ["web"]
    stored = await seeded.get_refresh_token(token.token_hash)
    assert stored is not None and stored.revoked_at == 30.0
    assert await seeded.grant_revoked(["fam"])
    assert [entry.action for entry in await seeded.list_audit()] == ["consent.revoke"]
