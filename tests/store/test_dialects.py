"""The dialect layer under the one SQL store: placeholders, and reads that never queue."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from idp.config import sqlite_path
from idp.store.base import ClientRecord, Store
from idp.store.dialects.postgresql import numbered

pytestmark = pytest.mark.anyio

DEADLINE = 5.0


def a_client(client_id: str) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        name=f"app {client_id}",
        secret_hash=hashlib.sha256(b"s").digest(),
        redirect_uris=(),
        post_logout_redirect_uris=(),
        grant_types=("client_credentials",),
        scope=("read",),
        audiences=(),
        token_endpoint_auth_method="client_secret_basic",
        access_token_alg="ES256",
        id_token_alg="ES256",
        created_at=1000.0,
    )


def test_question_marks_become_numbered_parameters() -> None:
    assert numbered("SELECT 1") == "SELECT 1"
    assert numbered("a = ? AND (b = ? OR c = ?)") == "a = $1 AND (b = $2 OR c = $3)"
    assert numbered("VALUES (?, ?)") == "VALUES ($1, $2)"


@asynccontextmanager
async def writes_held(database_url: str) -> AsyncIterator[None]:
    """Another process's transaction that holds back every write to ``clients``."""
    if database_url.startswith("sqlite:"):
        other = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    connection = await asyncpg.connect(database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("LOCK TABLE clients IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


async def test_client_lookup_answers_while_a_write_waits(store: Store, database_url: str) -> None:
    """The token endpoint's client lookup never queues behind a write held up by a lock
    (SQLite: it reads on its own read-only connection; PostgreSQL: on its own connection)."""
    await store.create_client(a_client("c1"))
    async with writes_held(database_url):
        waiting = asyncio.ensure_future(store.create_client(a_client("c2")))
        await asyncio.sleep(0)  # let the write reach the store before the read
        found = await asyncio.wait_for(store.get_client("c1"), DEADLINE)
        assert found is not None and found.client_id == "c1"
        assert not waiting.done()
    await asyncio.wait_for(waiting, DEADLINE * 2)
    assert await store.get_client("c2") is not None
