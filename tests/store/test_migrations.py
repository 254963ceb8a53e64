"""Migrations: schema status, idempotent and concurrent runs, and data upgrades on both stores."""

from __future__ import annotations

import asyncio
import logging

import pytest

from idp.config import Settings
from idp.store import make_store
from idp.store.base import Conflict, Store, UserRecord
from tests.support.stores import open_stores, write_raw

pytestmark = pytest.mark.anyio


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
    async with open_stores(settings.database_url, 3) as stores:
        results = await asyncio.gather(*(each.migrate() for each in stores))
        status = await stores[0].schema_status()
        assert status.up_to_date
        assert sorted(v for applied in results for v in applied) == list(status.applied)


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
    await asyncio.to_thread(write_raw, settings.database_url, statements)
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
