"""Store conformance: the same tests, unchanged, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from dataclasses import replace

import asyncpg
import pytest

from idp.config import Settings
from idp.keyring.admin import ensure_key_rings, revoke_key, rotate_keys
from idp.store import make_store
from idp.store.base import (
    AuditEntry,
    ClientRecord,
    Conflict,
    KeyRingChange,
    Store,
    UserRecord,
)

pytestmark = pytest.mark.anyio


def a_client(name: str = "billing", client_id: str = "c1") -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        name=name,
        secret_hash=hashlib.sha256(b"s").digest(),
        redirect_uris=("https://app.example/cb",),
        post_logout_redirect_uris=(),
        grant_types=("client_credentials",),
        scope=("read", "write"),
        audiences=("https://api.example",),
        token_endpoint_auth_method="client_secret_basic",
        access_token_alg="ES256",
        id_token_alg="RS256",
        created_at=1000.5,
    )


async def test_fresh_database_reports_pending_migrations(settings: Settings) -> None:
    store = make_store(settings.database_url)
    await store.open()
    try:
        status = await store.schema_status()
        assert status.applied == ()
        assert 1 in status.pending
        assert not status.up_to_date
    finally:
        await store.close()


async def test_migrate_is_idempotent(store: Store) -> None:
    assert (await store.schema_status()).up_to_date
    assert await store.migrate() == []
    assert (await store.schema_status()).up_to_date


async def test_concurrent_migrations_apply_once(settings: Settings) -> None:
    stores = [make_store(settings.database_url) for _ in range(3)]
    for each in stores:
        await each.open()
    try:
        results = await asyncio.gather(*(each.migrate() for each in stores))
        status = await stores[0].schema_status()
        assert status.up_to_date
        assert sorted(v for applied in results for v in applied) == list(status.applied)
    finally:
        for each in stores:
            await each.close()


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


def _write_raw(database_url: str, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """Write rows past the store, as a version before migration 6 left them."""
    if database_url.startswith("sqlite:"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        with connection:
            for sql, values in statements:
                connection.execute(sql, values)
        connection.close()
        return

    async def run() -> None:
        pg = await asyncpg.connect(database_url, timeout=10)
        try:
            for sql, values in statements:
                numbered = sql
                for i in range(1, len(values) + 1):
                    numbered = numbered.replace("?", f"${i}", 1)
                await pg.execute(numbered, *values)
        finally:
            await pg.close()

    asyncio.run(run())


async def test_migration_gives_existing_users_their_canonical_username(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The oldest of the accounts spelt alike keeps the name; the others are named in a warning."""
    await store.create_user(UserRecord("u1", "Alice", "$argon2id$x", None, None, 1.0))
    insert = (
        "INSERT INTO users (id, username, password_hash, disabled, created_at) "
        "VALUES (?, ?, '$argon2id$y', ?, ?)"
    )
    statements: list[tuple[str, tuple[object, ...]]] = [
        ("UPDATE users SET canonical_username = NULL", ()),
        (insert, ("u2", "alice", False, 3.0)),
        (insert, ("u3", "\uff22\uff4f\uff42", False, 2.0)),
    ]
    await asyncio.to_thread(_write_raw, settings.database_url, statements)
    with caplog.at_level(logging.WARNING, logger="idp.store"):
        assert await store.migrate() == []
    found = await store.get_user_by_username("ALICE")
    assert found is not None and found.id == "u1"
    bob = await store.get_user_by_username("bob")
    assert bob is not None and bob.id == "u3"
    assert [u.id for u in await store.list_users()] == ["u1", "u3", "u2"]
    assert "user u2 ('alice')" in caplog.text and "idp users delete u2" in caplog.text
    assert "u1" not in caplog.text and "u3" not in caplog.text
    with pytest.raises(Conflict):
        await store.create_user(UserRecord("u4", "BOB", "$argon2id$z", None, None, 4.0))


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


async def test_key_ring_starts_empty_at_version_zero(store: Store) -> None:
    assert await store.list_keys() == []
    assert await store.key_ring_version() == 0


async def test_ensure_creates_active_and_next_per_alg_once(
    store: Store, settings: Settings
) -> None:
    keys = await ensure_key_rings(store, settings)
    states = sorted((k.alg, k.state) for k in keys)
    assert states == [
        ("ES256", "active"),
        ("ES256", "next"),
        ("RS256", "active"),
        ("RS256", "next"),
    ]
    version = await store.key_ring_version()
    assert version == 1
    await ensure_key_rings(store, settings)
    assert await store.key_ring_version() == version
    assert len(await store.list_keys()) == 4


async def test_rotation_promotes_next_and_retires_active(store: Store, settings: Settings) -> None:
    keys = await ensure_key_rings(store, settings)
    before = {(k.alg, k.state): k.kid for k in keys}
    [rotation] = await rotate_keys(store, settings, ["ES256"])
    assert rotation.active_kid == before[("ES256", "next")]
    assert rotation.retired_kid == before[("ES256", "active")]
    after = {k.kid: k for k in await store.list_keys()}
    assert after[rotation.active_kid].state == "active"
    assert after[rotation.active_kid].activated_at is not None
    assert after[before[("ES256", "active")]].state == "retired"
    assert after[before[("ES256", "active")]].retired_at is not None
    assert after[rotation.next_kid].state == "next"
    assert after[before[("RS256", "active")]].state == "active"


async def test_concurrent_rotations_keep_one_active_key(settings: Settings) -> None:
    """Several processes rotating at once are serialised by the store."""
    stores = [make_store(settings.database_url) for _ in range(3)]
    for each in stores:
        await each.open()
    await stores[0].migrate()
    try:
        await ensure_key_rings(stores[0], settings)
        await asyncio.gather(*(rotate_keys(each, settings, ["ES256"]) for each in stores))
        keys = await stores[0].list_keys()
        es = [k for k in keys if k.alg == "ES256"]
        assert [k.state for k in es].count("active") == 1
        assert [k.state for k in es].count("retired") == 3
        assert [k.state for k in es].count("next") == 1
        assert await stores[0].key_ring_version() == 4
    finally:
        for each in stores:
            await each.close()


async def test_revoking_active_key_hands_over_and_erases_private_part(
    store: Store, settings: Settings
) -> None:
    keys = await ensure_key_rings(store, settings)
    active = next(k for k in keys if k.alg == "RS256" and k.state == "active")
    waiting = next(k for k in keys if k.alg == "RS256" and k.state == "next")
    revoked = await revoke_key(store, settings, active.kid)
    assert revoked.state == "revoked"
    after = {k.kid: k for k in await store.list_keys()}
    assert after[active.kid].state == "revoked"
    assert after[active.kid].private_key_sealed is None
    assert after[active.kid].revoked_at is not None
    assert after[waiting.kid].state == "active"
    rs = [k for k in after.values() if k.alg == "RS256"]
    assert sorted(k.state for k in rs) == ["active", "next", "revoked"]


async def test_failed_mutation_writes_nothing(store: Store, settings: Settings) -> None:
    await ensure_key_rings(store, settings)
    version = await store.key_ring_version()

    def broken(keys: object) -> KeyRingChange:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.change_key_ring(broken)
    assert await store.key_ring_version() == version


async def test_store_refuses_two_active_keys_for_one_alg(store: Store, settings: Settings) -> None:
    """The database itself enforces one active key per algorithm."""
    keys = await ensure_key_rings(store, settings)
    waiting = next(k for k in keys if k.alg == "ES256" and k.state == "next")
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        await store.change_key_ring(
            lambda _: KeyRingChange(updates=(replace(waiting, state="active"),))
        )
    states = sorted(k.state for k in await store.list_keys() if k.alg == "ES256")
    assert states == ["active", "next"]
