"""Browser sessions, authorization codes and consents (one winner of concurrent redemptions)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.store.base import Store
from tests.support.records import a_code, a_session, a_user, a_web_client
from tests.support.stores import open_stores

pytestmark = pytest.mark.anyio


async def test_session_round_trip_touch_and_end(seeded: Store) -> None:
    session = a_session()
    await seeded.create_session(session)
    assert await seeded.get_session(session.id) == session
    assert await seeded.get_session(hashlib.sha256(b"other").digest()) is None

    await seeded.touch_session(session.id, 150.0, 250.0)
    touched = await seeded.get_session(session.id)
    assert touched is not None
    assert (touched.last_seen_at, touched.idle_expires_at) == (150.0, 250.0)
    # The idle expiry never moves past the absolute one.
    await seeded.touch_session(session.id, 160.0, 5000.0)
    capped = await seeded.get_session(session.id)
    assert capped is not None and capped.idle_expires_at == 1000.0

    ended = await seeded.end_session(session.id, 170.0)
    assert ended is not None and ended.ended_at == 170.0 and ended.sid == session.sid
    assert await seeded.end_session(session.id, 180.0) is None
    stored = await seeded.get_session(session.id)
    assert stored is not None and stored.ended_at == 170.0
    assert not stored.is_live(171.0)


def test_session_liveness_rules() -> None:
    session = a_session()
    assert session.is_live(199.0)
    assert not session.is_live(200.0)
    assert not replace(session, idle_expires_at=2000.0).is_live(1000.0)
    assert not replace(session, ended_at=150.0).is_live(150.0)


async def test_end_user_sessions_ends_only_that_users_live_sessions(seeded: Store) -> None:
    await seeded.create_user(a_user("u2", "bob"))
    await seeded.create_session(a_session(b"a"))
    await seeded.create_session(a_session(b"b"))
    await seeded.create_session(a_session(b"c", user_id="u2"))
    await seeded.end_session(a_session(b"b").id, 120.0)
    ended = await seeded.end_user_sessions("u1", 130.0)
    assert [s.sid for s in ended] == [a_session(b"a").sid]
    other = await seeded.get_session(a_session(b"c").id)
    assert other is not None and other.ended_at is None
    assert await seeded.end_user_sessions("u1", 140.0) == []


async def test_session_clients_are_remembered_once(seeded: Store) -> None:
    await seeded.create_client(a_web_client("second"))
    session = a_session()
    await seeded.create_session(session)
    await seeded.add_session_client(session.id, "web", 101.0)
    await seeded.add_session_client(session.id, "second", 102.0)
    await seeded.add_session_client(session.id, "web", 103.0)
    assert await seeded.list_session_clients(session.id) == ["web", "second"]
    assert await seeded.list_session_clients(a_session(b"x").id) == []


async def test_delete_expired_sessions_in_batches(seeded: Store) -> None:
    for n in range(5):
        await seeded.create_session(a_session(bytes([n]), expires_at=100.0 + n))
    await seeded.create_session(a_session(b"idle", idle_expires_at=101.0))
    await seeded.create_session(a_session(b"live"))
    await seeded.add_session_client(a_session(bytes([0])).id, "web", 100.0)
    assert await seeded.delete_expired_sessions(103.0, 2) == 2
    assert await seeded.delete_expired_sessions(103.0, 10) == 3
    assert await seeded.delete_expired_sessions(103.0, 10) == 0
    assert await seeded.get_session(a_session(b"live").id) is not None
    assert await seeded.get_session(a_session(bytes([4])).id) is not None
    assert await seeded.get_session(a_session(b"idle").id) is None
    assert await seeded.list_session_clients(a_session(bytes([0])).id) == []


async def test_code_is_consumed_once_and_replay_is_detected(seeded: Store) -> None:
    code = a_code()
    await seeded.create_authorization_code(code)
    first = await seeded.consume_authorization_code(code.code_hash, 110.0)
    assert first is not None and not first.already_consumed
    assert first.code == replace(code, consumed_at=110.0)
    second = await seeded.consume_authorization_code(code.code_hash, 111.0)
    assert second is not None and second.already_consumed
    assert second.code.id == code.id and second.code.consumed_at == 110.0
    assert await seeded.consume_authorization_code(hashlib.sha256(b"x").digest(), 1.0) is None


async def test_code_keeps_its_resources_and_dpop_key(seeded: Store) -> None:
    """The resource indicators (RFC 8707) and DPoP thumbprint (RFC 9449 section 10) a code
    was asked with come back when it is redeemed."""
    code = replace(a_code(), resources=("https://a.example", "urn:b"), dpop_jkt="j" * 43)
    await seeded.create_authorization_code(code)
    redeemed = await seeded.consume_authorization_code(code.code_hash, 110.0)
    assert redeemed is not None
    assert redeemed.code.resources == ("https://a.example", "urn:b")
    assert redeemed.code.dpop_jkt == "j" * 43


async def test_concurrent_code_redemptions_have_exactly_one_winner(
    seeded: Store, settings: Settings
) -> None:
    code = a_code()
    await seeded.create_authorization_code(code)
    # Separate store objects behave like separate server processes.
    async with open_stores(settings.database_url, 3) as others:
        contenders = [seeded, *others] * 4
        results = await asyncio.gather(
            *(
                s.consume_authorization_code(code.code_hash, 110.0 + i)
                for i, s in enumerate(contenders)
            )
        )
    assert all(r is not None for r in results)
    winners = [r for r in results if r is not None and not r.already_consumed]
    assert len(winners) == 1


async def test_delete_expired_codes_in_batches(seeded: Store) -> None:
    for n in range(5):
        await seeded.create_authorization_code(a_code(bytes([n]), expires_at=100.0 + n))
    await seeded.create_authorization_code(a_code(b"live", expires_at=500.0))
    assert await seeded.delete_expired_authorization_codes(104.0, 3) == 3
    assert await seeded.delete_expired_authorization_codes(104.0, 3) == 2
    assert await seeded.delete_expired_authorization_codes(104.0, 3) == 0
    assert await seeded.consume_authorization_code(a_code(b"live").code_hash, 1.0) is not None
    assert await seeded.consume_authorization_code(a_code(bytes([0])).code_hash, 1.0) is None


async def test_consent_accumulates_scopes_per_user_and_client(seeded: Store) -> None:
    await seeded.create_client(a_web_client("second"))
    assert await seeded.get_consent("u1", "web") == ()
    await seeded.save_consent("u1", "web", ("openid", "email"), 100.0)
    await seeded.save_consent("u1", "web", ("email", "profile"), 101.0)
    assert await seeded.get_consent("u1", "web") == ("openid", "email", "profile")
    assert await seeded.get_consent("u1", "second") == ()


async def test_deleting_a_client_removes_its_codes_and_consents(seeded: Store) -> None:
    await seeded.create_authorization_code(a_code())
    await seeded.save_consent("u1", "web", ("openid",), 100.0)
    assert await seeded.delete_client("web")
    assert await seeded.consume_authorization_code(a_code().code_hash, 1.0) is None
    assert await seeded.get_consent("u1", "web") == ()
