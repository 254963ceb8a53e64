"""The store's lookups behind the consent and session admin operations: consents of every
user or client, and a session found by its public sid."""

from __future__ import annotations

import pytest

from idp.store.base import ConsentRecord, Store
from tests.support.records import a_session, a_user, a_web_client

pytestmark = pytest.mark.anyio


async def test_consents_are_found_by_user_by_client_or_both(seeded: Store) -> None:
    await seeded.create_user(a_user("u2", "bob"))
    await seeded.create_client(a_web_client("c1"))
    await seeded.save_consent("u1", "web", ("openid",), 10.0)
    await seeded.save_consent("u2", "web", ("openid", "email"), 20.0)
    await seeded.save_consent("u1", "c1", ("openid",), 30.0)

    def pairs(found: list[ConsentRecord]) -> list[tuple[str, str]]:
        return [(c.user_id, c.client_id) for c in found]

    assert pairs(await seeded.find_consents()) == [("u1", "web"), ("u2", "web"), ("u1", "c1")]
    assert pairs(await seeded.find_consents(user_id="u1")) == [("u1", "web"), ("u1", "c1")]
    assert pairs(await seeded.find_consents(client_id="web")) == [("u1", "web"), ("u2", "web")]
    [one] = await seeded.find_consents("u2", "web")
    assert (one.scope, one.granted_at) == (("openid", "email"), 20.0)
    assert await seeded.find_consents("u2", "c1") == []
    assert await seeded.find_consents(user_id="nobody") == []


async def test_a_session_is_found_by_its_sid_ended_or_not(seeded: Store) -> None:
    session = a_session(b"a")
    await seeded.create_session(session)
    await seeded.create_session(a_session(b"b"))
    assert await seeded.get_session_by_sid(session.sid) == session
    await seeded.end_session(session.id, 150.0)
    ended = await seeded.get_session_by_sid(session.sid)
    assert ended is not None and ended.id == session.id and ended.ended_at == 150.0
    assert await seeded.get_session_by_sid("sid-unknown") is None
