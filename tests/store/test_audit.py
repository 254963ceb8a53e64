"""The audit trail in the store: every change recorded in the same transaction, nothing for a
refused one."""

from __future__ import annotations

import json

import pytest

from idp.admin.clients import create_client, delete_client
from idp.admin.context import AdminContext
from idp.admin.keys import revoke_key, rotate_keys
from idp.admin.users import create_user
from idp.config import Settings
from idp.keyring.changes import ensure_key_rings
from idp.oauth.registration import ClientRequest
from idp.store.base import AuditEntry, Conflict, KeyRingChange, NotFound, Store

pytestmark = pytest.mark.anyio


def request(name: str = "billing") -> ClientRequest:
    return ClientRequest(name=name, grant_types=["client_credentials"], scope="read")


def actions(entries: list[AuditEntry]) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.outcome) for e in entries]


async def test_client_and_user_changes_are_recorded(store: Store, settings: Settings) -> None:
    alice = AdminContext(store, settings, actor="cli:alice")
    client, _ = await create_client(alice, request())
    user = await create_user(alice, "bob", "correct horse")
    await delete_client(AdminContext(store, settings, actor="admin:ops"), client.client_id)

    entries = await store.list_audit()
    assert actions(entries) == [
        ("cli:alice", "client.create", "success"),
        ("cli:alice", "user.create", "success"),
        ("admin:ops", "client.delete", "success"),
    ]
    assert [e.target for e in entries] == [client.client_id, user.id, client.client_id]
    assert entries[0].detail == {"name": "billing"}
    assert entries[1].detail == {"username": "bob"}
    assert "correct horse" not in json.dumps([dict(e.detail) for e in entries])
    assert all(e.id is not None for e in entries)
    assert [e.id for e in entries] == sorted(e.id for e in entries if e.id is not None)


async def test_refused_changes_write_no_audit_row(store: Store, settings: Settings) -> None:
    """A change that fails (name taken, nothing to delete) leaves the audit trail unchanged."""
    ctx = AdminContext(store, settings)
    await create_client(ctx, request())
    before = await store.list_audit()
    with pytest.raises(Conflict):
        await create_client(ctx, request())
    with pytest.raises(NotFound):
        await delete_client(ctx, "no-such-client")
    await create_user(ctx, "bob", "password one")
    with pytest.raises(Conflict):
        await create_user(ctx, "bob", "password one")
    after = await store.list_audit()
    assert len(after) == len(before) + 1
    assert after[-1].action == "user.create"


async def test_key_transitions_are_recorded_with_their_actor(
    store: Store, settings: Settings
) -> None:
    keys = await ensure_key_rings(store, settings)
    created = await store.list_audit()
    assert {(e.actor, e.action) for e in created} == {("system", "key.create")}
    assert sorted(e.target for e in created) == sorted(k.kid for k in keys)
    assert {e.detail["state"] for e in created} == {"active", "next"}

    alice = AdminContext(store, settings, actor="cli:alice")
    (rotation,) = await rotate_keys(alice, ["ES256"])
    rotated = (await store.list_audit())[len(created) :]
    assert {(e.action, e.target) for e in rotated} == {
        ("key.retire", rotation.retired_kid),
        ("key.activate", rotation.active_kid),
        ("key.create", rotation.next_kid),
    }
    assert {e.actor for e in rotated} == {"cli:alice"}
    activate = next(e for e in rotated if e.action == "key.activate")
    assert activate.detail == {"alg": "ES256", "from": "next", "to": "active"}

    await revoke_key(alice, rotation.retired_kid or "")
    last = (await store.list_audit())[-1]
    assert (last.action, last.target, last.detail["from"]) == (
        "key.revoke",
        rotation.retired_kid,
        "retired",
    )


async def test_failed_key_change_writes_no_audit_row(store: Store, settings: Settings) -> None:
    await ensure_key_rings(store, settings)
    count = len(await store.list_audit())

    def broken(keys: object) -> KeyRingChange:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.change_key_ring(broken)
    assert len(await store.list_audit()) == count


async def test_list_since_and_limit(store: Store) -> None:
    for at, action in ((100.0, "a"), (200.0, "b"), (300.0, "c")):
        await store.record_audit(AuditEntry(at, "admin:x", action, "t", "failure", {"n": 1}))
    assert [e.action for e in await store.list_audit(since=200.0)] == ["b", "c"]
    assert [e.action for e in await store.list_audit(limit=2)] == ["b", "c"]
    (entry,) = await store.list_audit(since=300.0)
    assert (entry.outcome, entry.detail, entry.at) == ("failure", {"n": 1}, 300.0)
    # A page further back is read by id, with the same since and limit.
    assert entry.id is not None
    assert [e.action for e in await store.list_audit(before=entry.id, limit=1)] == ["b"]
    assert [e.action for e in await store.list_audit(since=200.0, before=entry.id)] == ["b"]
    assert await store.list_audit(since=300.0, before=entry.id) == []


async def test_counted_rows_grow_by_one_per_bucket(store: Store) -> None:
    """count_audit is an upsert: repeats in one bucket add to its count, not to the table."""
    first = AuditEntry(100.0, "anonymous", "key.list", "keys", "failure", {"status": 401})
    for _ in range(5):
        await store.count_audit(first, "b1")
    await store.count_audit(AuditEntry(170.0, "anonymous", "user.list", "users", "failure"), "b2")
    rows = await store.list_audit()
    assert [(e.action, e.at, e.count, e.detail) for e in rows] == [
        ("key.list", 100.0, 5, {"status": 401}),
        ("user.list", 170.0, 1, {}),
    ]
    await store.record_audit(AuditEntry(200.0, "admin:x", "user.list", "u", "failure"))
    await store.record_audit(AuditEntry(200.0, "admin:x", "user.list", "u", "failure"))
    assert [e.count for e in await store.list_audit()] == [5, 1, 1, 1]


async def test_the_admin_tokens_subject_is_recorded(store: Store, settings: Settings) -> None:
    await create_client(AdminContext(store, settings, "admin:ops", "ops"), request())
    await ensure_key_rings(store, settings, actor="admin:ops", subject="ops")
    await create_user(AdminContext(store, settings), "bob", "a long enough password")
    entries = await store.list_audit()
    assert [e.subject for e in entries[:-1]] == ["ops"] * (len(entries) - 1)
    assert entries[-1].subject is None
