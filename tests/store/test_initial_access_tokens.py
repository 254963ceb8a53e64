"""Initial access tokens (RFC 7591 section 3) and registration access token hashes in the
store, on both backends: a use is counted atomically, spent or expired tokens are refused,
expired ones are collected, administrators list them (never the hash) and delete them, and a
client keeps its registration token hash."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from idp.store.base import (
    AuditEntry,
    InitialAccessTokenRecord,
    InitialAccessTokenSummary,
    Store,
)
from tests.support.records import a_client

T0 = 1_000_000.0


def a_token(
    uses: int | None = 1, token: bytes = b"t", expires_at: float = T0 + 60, created_at: float = T0
) -> InitialAccessTokenRecord:
    return InitialAccessTokenRecord(
        id=f"iat-{token.decode()}",
        token_hash=hashlib.sha256(token).digest(),
        created_at=created_at,
        expires_at=expires_at,
        uses_left=uses,
    )


def summary(token: InitialAccessTokenRecord) -> InitialAccessTokenSummary:
    return InitialAccessTokenSummary(token.id, token.created_at, token.expires_at, token.uses_left)


@pytest.mark.anyio
async def test_a_single_use_token_is_used_once(store: Store) -> None:
    token = a_token(uses=1)
    audit = AuditEntry(T0, "cli:ops", "client.registration_token", token.id)
    await store.create_initial_access_token(token, audit)
    assert await store.get_initial_access_token(token.token_hash, T0) == token
    used = await store.use_initial_access_token(token.token_hash, T0 + 1)
    assert used is not None and used.id == token.id and used.uses_left == 0
    assert await store.use_initial_access_token(token.token_hash, T0 + 2) is None
    assert await store.get_initial_access_token(token.token_hash, T0 + 2) is None
    rows = await store.list_audit(action="client.registration_token")
    assert [(r.actor, r.target) for r in rows] == [("cli:ops", token.id)]


@pytest.mark.anyio
async def test_parallel_uses_of_the_last_use_let_one_through(store: Store) -> None:
    token = a_token(uses=2)
    await store.create_initial_access_token(token)
    results = await asyncio.gather(
        *(store.use_initial_access_token(token.token_hash, T0) for _ in range(6))
    )
    assert sum(r is not None for r in results) == 2


@pytest.mark.anyio
async def test_an_unlimited_token_works_until_it_expires(store: Store) -> None:
    token = a_token(uses=None, expires_at=T0 + 60)
    await store.create_initial_access_token(token)
    for _ in range(3):
        used = await store.use_initial_access_token(token.token_hash, T0)
        assert used is not None and used.uses_left is None
    assert await store.use_initial_access_token(token.token_hash, T0 + 60) is None
    assert await store.get_initial_access_token(hashlib.sha256(b"other").digest(), T0) is None


@pytest.mark.anyio
async def test_expired_tokens_are_collected(store: Store) -> None:
    await store.create_initial_access_token(a_token(token=b"old", expires_at=T0 + 10))
    await store.create_initial_access_token(a_token(token=b"new", expires_at=T0 + 100))
    assert await store.delete_expired_initial_access_tokens(T0 + 50, 10) == 1
    assert await store.get_initial_access_token(hashlib.sha256(b"new").digest(), T0) is not None


@pytest.mark.anyio
async def test_tokens_are_listed_oldest_first_without_their_hash(store: Store) -> None:
    assert await store.list_initial_access_tokens() == []
    unlimited = a_token(uses=None, token=b"any", created_at=T0 + 3, expires_at=T0 + 100)
    spent = a_token(uses=1, token=b"spent", created_at=T0 + 2, expires_at=T0 + 100)
    expired = a_token(uses=5, token=b"old", created_at=T0 + 1, expires_at=T0 + 10)
    for token in (unlimited, spent, expired):
        await store.create_initial_access_token(token)
    assert await store.use_initial_access_token(spent.token_hash, T0 + 5) is not None
    listed = await store.list_initial_access_tokens()
    assert listed == [
        summary(expired),
        replace(summary(spent), uses_left=0),
        summary(unlimited),
    ]
    assert all(not hasattr(t, "token_hash") for t in listed)
    # Live ones only: not expired by then, a use left.
    assert await store.list_initial_access_tokens(T0 + 5) == [summary(expired), summary(unlimited)]
    assert await store.list_initial_access_tokens(T0 + 10) == [summary(unlimited)]
    assert await store.list_initial_access_tokens(T0 + 100) == []


@pytest.mark.anyio
async def test_a_deleted_token_is_gone_with_its_audit_row(store: Store) -> None:
    kept, revoked = a_token(uses=None, token=b"kept"), a_token(uses=3, token=b"revoked")
    await store.create_initial_access_token(kept)
    await store.create_initial_access_token(revoked)
    audit = AuditEntry(T0 + 1, "cli:ops", "client.registration_token.revoke", revoked.id)
    assert await store.delete_initial_access_token(revoked.id, audit)
    assert await store.get_initial_access_token(revoked.token_hash, T0 + 1) is None
    assert await store.use_initial_access_token(revoked.token_hash, T0 + 1) is None
    assert await store.list_initial_access_tokens() == [summary(kept)]
    assert await store.get_initial_access_token(kept.token_hash, T0 + 1) == kept
    # Deleting it again, or an unknown id, changes nothing and writes no audit row.
    again = AuditEntry(T0 + 2, "cli:ops", "client.registration_token.revoke", revoked.id)
    assert not await store.delete_initial_access_token(revoked.id, again)
    assert not await store.delete_initial_access_token("no-such-token")
    rows = await store.list_audit(action="client.registration_token.revoke")
    assert [(r.at, r.actor, r.target) for r in rows] == [(T0 + 1, "cli:ops", revoked.id)]


@pytest.mark.anyio
async def test_a_client_keeps_its_registration_token_hash(store: Store) -> None:
    digest = hashlib.sha256(b"rat").digest()
    client = replace(a_client(), registration_token_hash=digest)
    await store.create_client(client)
    got = await store.get_client(client.client_id)
    assert got is not None and got.registration_token_hash == digest
    await store.update_client(replace(client, name="renamed"))
    got = await store.get_client(client.client_id)
    assert got is not None and got.registration_token_hash == digest
