"""The signing-key ring: every change is one transaction under the ring's lock, bumps the
ring's version, writes its audit rows, and tells the other replicas (see the dialect)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from idp.store.base import SYSTEM, Actor, AuditEntry, KeyRecord, KeyRingChange, KeyRingMutation
from idp.store.codec import KEYS
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert, insert_audit

_KEY_ACTIONS = {
    "next": "key.prepublish",
    "active": "key.activate",
    "retired": "key.retire",
    "revoked": "key.revoke",
    "expired": "key.expire",
}


class Keys(SqlBase):
    """KeyRingStore."""

    async def list_keys(self) -> list[KeyRecord]:
        return await self.dialect.run(_keys)

    async def key_ring_version(self) -> int:
        # Hot: introspection reads it on every request.
        version = await self.dialect.run(
            lambda c: c.fetchval("SELECT version FROM key_ring_version WHERE id = 1"), hot=True
        )
        return int(version)

    async def change_key_ring(
        self, mutation: KeyRingMutation, actor: Actor | None = None
    ) -> list[KeyRecord]:
        async def change(connection: Connection) -> list[KeyRecord]:
            await self.dialect.lock(connection, "idp-key-ring")
            before = await _keys(connection)
            result = mutation(before)
            # Demotions before promotions, so that the one-active-key-per-alg index holds.
            for key in sorted(result.updates, key=lambda key: key.state == "active"):
                await connection.execute(KEYS.update, *KEYS.update_values(key))
            for key in result.inserts:
                await insert(connection, KEYS, key)
            if not result.is_empty:
                await connection.execute("UPDATE key_ring_version SET version = version + 1")
                for entry in _audit_entries(before, result, actor or Actor(SYSTEM, time.time())):
                    await insert_audit(connection, entry)
                await self.dialect.notify_key_ring(connection)
            return await _keys(connection)

        return await self.dialect.run(change, transaction=True)

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        await self.dialect.watch_key_ring(on_change)


async def _keys(connection: Connection) -> list[KeyRecord]:
    rows = await connection.fetch(f"{KEYS.select} ORDER BY created_at, kid")
    return [KEYS.from_row(row) for row in rows]


def _audit_entries(
    before: Sequence[KeyRecord], change: KeyRingChange, actor: Actor
) -> list[AuditEntry]:
    """The audit rows of one key-ring change: one per new key, rewrap and state change."""
    states = {key.kid: key.state for key in before}
    entries = [
        AuditEntry(
            actor.at,
            actor.name,
            "key.import" if key.kid in change.imported else "key.create",
            key.kid,
            detail={"alg": key.alg, "state": key.state},
            subject=actor.subject,
        )
        for key in change.inserts
    ]
    for key in change.updates:
        previous = states.get(key.kid)
        if key.kid in change.rewrapped:
            entries.append(
                AuditEntry(actor.at, actor.name, "key.rewrap", key.kid, detail={"alg": key.alg})
            )
        if previous != key.state:
            entries.append(
                AuditEntry(
                    actor.at,
                    actor.name,
                    _KEY_ACTIONS.get(key.state, "key.update"),
                    key.kid,
                    detail={"alg": key.alg, "from": previous, "to": key.state},
                    subject=actor.subject,
                )
            )
    return entries
