"""Clients and users: round trips, uniqueness, and updates audited in one transaction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp.store.base import AuditEntry, Conflict, Store, UserRecord
from tests.support.records import a_client, a_user, a_web_client

pytestmark = pytest.mark.anyio


async def test_client_round_trip(store: Store) -> None:
    client = a_client()
    await store.create_client(client)
    assert await store.get_client("c1") == client
    assert await store.get_client("nope") is None
    assert await store.list_clients() == [client]


async def test_duplicate_client_name_conflicts_and_writes_nothing(store: Store) -> None:
    await store.create_client(a_client())
    with pytest.raises(Conflict):
        await store.create_client(a_client(client_id="c2"))
    assert [c.client_id for c in await store.list_clients()] == ["c1"]


async def test_delete_client(store: Store) -> None:
    await store.create_client(a_client())
    assert await store.delete_client("c1") is True
    assert await store.delete_client("c1") is False
    assert await store.get_client("c1") is None


async def test_public_client_has_no_secret(store: Store) -> None:
    client = replace(a_client(), secret_hash=None, token_endpoint_auth_method="none")
    await store.create_client(client)
    stored = await store.get_client("c1")
    assert stored is not None and stored.secret_hash is None and stored.is_public


async def test_user_round_trip_and_conflict(store: Store) -> None:
    user = UserRecord("u1", "ada", "$argon2id$x", "ada@example.com", "Ada", 5.0)
    await store.create_user(user)
    with pytest.raises(Conflict):
        await store.create_user(replace(user, id="u2"))
    assert await store.list_users() == [user]


async def test_usernames_are_unique_up_to_case_and_unicode_form(store: Store) -> None:
    user = UserRecord("u1", "Alice", "$argon2id$x", None, None, 5.0)
    await store.create_user(user)
    for spelling in ("alice", "ALICE", "\uff41lice", " alice"):
        with pytest.raises(Conflict):
            await store.create_user(replace(user, id="u2", username=spelling))
    for spelling in ("alice", "ALICE", "\uff21\uff2c\uff29\uff23\uff25"):
        assert await store.get_user_by_username(spelling) == user
    bob = UserRecord("u3", "bob", "$argon2id$y", None, None, 6.0)
    await store.create_user(bob)
    with pytest.raises(Conflict):
        await store.update_user(replace(bob, username="aLiCe"))
    assert await store.list_users() == [user, bob]


async def test_update_client_replaces_the_row_and_audits_in_one_transaction(
    store: Store,
) -> None:
    await store.create_client(a_client())
    await store.create_client(a_client("other", "c2"))
    changed = replace(a_client(), name="renamed", scope=("read",), redirect_uris=())
    audit = AuditEntry(2000.0, "admin:x", "client.update", "c1", detail={"fields": ["name"]})
    assert await store.update_client(changed, audit)
    assert await store.get_client("c1") == changed
    assert [(e.action, e.target) for e in await store.list_audit()] == [("client.update", "c1")]

    with pytest.raises(Conflict):
        await store.update_client(replace(changed, name="other"), audit)
    assert await store.get_client("c1") == changed
    missing = replace(changed, client_id="nope", name="nope")
    assert not await store.update_client(missing, audit)
    assert await store.get_client("nope") is None
    assert len(await store.list_audit()) == 1


async def test_get_update_and_delete_user(store: Store) -> None:
    user = UserRecord("u1", "ada", "$argon2id$x", "ada@example.com", "Ada", 5.0)
    await store.create_user(user)
    await store.create_user(UserRecord("u2", "bob", "$argon2id$y", None, None, 6.0))
    assert await store.get_user("u1") == user
    assert await store.get_user("zz") is None

    changed = replace(user, email=None, name="Ada L.", disabled=True, password_hash="$argon2id$z")
    update = AuditEntry(7.0, "admin:x", "user.update", "u1")
    assert await store.update_user(changed, update)
    assert await store.get_user("u1") == changed
    with pytest.raises(Conflict):
        await store.update_user(replace(changed, username="bob"), update)
    assert not await store.update_user(replace(changed, id="zz", username="zz"), update)

    delete = AuditEntry(8.0, "admin:x", "user.delete", "u1")
    assert await store.delete_user("u1", delete)
    assert not await store.delete_user("u1", delete)
    assert await store.get_user("u1") is None
    assert [u.id for u in await store.list_users()] == ["u2"]
    assert [(e.action, e.target) for e in await store.list_audit()] == [
        ("user.update", "u1"),
        ("user.delete", "u1"),
    ]


async def test_client_options_round_trip_with_defaults(store: Store) -> None:
    plain = a_web_client("plain")
    special = a_web_client(
        "special",
        require_consent=True,
        backchannel_logout_uri="https://app.example/backchannel",
    )
    await store.create_client(plain)
    await store.create_client(special)
    assert await store.get_client("plain") == plain
    assert (await store.get_client("plain")).require_consent is False  # type: ignore[union-attr]
    assert await store.get_client("special") == special


async def test_user_lookup_password_and_disable(seeded: Store) -> None:
    assert await seeded.get_user("u1") == a_user()
    assert await seeded.get_user_by_username("alice") == a_user()
    # One account up to case and Unicode form (the canonical username).
    assert await seeded.get_user_by_username("ALICE") == a_user()
    assert await seeded.get_user_by_username("alicia") is None
    assert await seeded.get_user("nobody") is None
    assert await seeded.set_user_password_hash("u1", "$argon2id$new")
    assert (await seeded.get_user("u1")).password_hash == "$argon2id$new"  # type: ignore[union-attr]
    assert not await seeded.set_user_password_hash("nobody", "x")
    current = await seeded.get_user("u1")
    assert current is not None
    assert await seeded.update_user(replace(current, disabled=True))
    assert (await seeded.get_user("u1")).disabled  # type: ignore[union-attr]
    assert await seeded.update_user(replace(current, disabled=False))
    assert not (await seeded.get_user("u1")).disabled  # type: ignore[union-attr]
    assert not await seeded.update_user(replace(current, id="nobody", disabled=True))
