"""The audit trail and the login throttle's counters: the rows about who tried what.

Counter updates take a lock per key (PostgreSQL advisory locks; SQLite's one writer), so a
decision made on the counters still holds when it is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from idp.store.base import AuditEntry, LoginCounter, LoginCounterUpdate
from idp.store.codec import AUDIT, LOGIN_COUNTERS
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert_audit

_COUNTER_UPSERT = f"{LOGIN_COUNTERS.insert} ON CONFLICT (key) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in LOGIN_COUNTERS.written[1:]
)


_NO_ID_LIMIT = 2**63 - 1
"""Above every audit row id (a signed 64-bit integer on both databases)."""


def _action_condition(action: str | None) -> tuple[str, tuple[object, ...]]:
    """The SQL that keeps one action's rows (``a.b``) or a family's (``a.*``: ``a.`` and on)."""
    if action is None:
        return "", ()
    if action.endswith(".*"):
        prefix = action[:-1]
        return " AND substr(action, 1, ?) = ?", (len(prefix), prefix)
    return " AND action = ?", (action,)


class AuditAndThrottle(SqlBase):
    """AuditStore and LoginCounterStore."""

    async def record_audit(self, entry: AuditEntry) -> None:
        await self.dialect.run(lambda c: insert_audit(c, entry))

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        await self._execute(
            AUDIT.insert_sql("bucket")
            + " ON CONFLICT (bucket) DO UPDATE SET count = audit_log.count + 1",
            *AUDIT.values(entry),
            bucket,
        )

    async def list_audit(
        self,
        since: float | None = None,
        limit: int = 1000,
        before: int | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        condition, values = _action_condition(action)
        newest = await self._list(
            AUDIT,
            f"{AUDIT.select} WHERE at >= ? AND id < ?{condition} ORDER BY id DESC LIMIT ?",
            since if since is not None else float("-inf"),
            before if before is not None else _NO_ID_LIMIT,
            *values,
            limit,
        )
        return newest[::-1]

    async def update_login_counters(
        self, keys: Sequence[str], now: float, update: LoginCounterUpdate
    ) -> None:
        # The decision and its writes happen under the keys' locks, one step for every
        # process sharing the store.
        async def change(connection: Connection) -> None:
            await self.dialect.lock_keys(connection, "login", keys)
            live = {c.key: c for c in await self._live_counters(connection, keys, now)}
            result = update(live)
            if result.forget:
                condition, values = self.dialect.any_of("key", result.forget)
                await connection.execute(f"DELETE FROM login_failures WHERE {condition}", *values)  # noqa: S608
            if result.put:
                await connection.executemany(
                    _COUNTER_UPSERT, [LOGIN_COUNTERS.values(c) for c in result.put]
                )

        if keys:
            await self.dialect.run(change, transaction=True)

    async def get_login_counters(self, keys: Sequence[str], now: float) -> list[LoginCounter]:
        if not keys:
            return []
        return await self.dialect.run(lambda c: self._live_counters(c, keys, now))

    async def _live_counters(
        self, connection: Connection, keys: Sequence[str], now: float
    ) -> list[LoginCounter]:
        condition, values = self.dialect.any_of("key", keys)
        rows = await connection.fetch(
            f"{LOGIN_COUNTERS.select} WHERE {condition} AND expires_at > ? ORDER BY key",
            *values,
            now,
        )
        return [LOGIN_COUNTERS.from_row(row) for row in rows]

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        return await self._change_audited(
            "DELETE FROM login_failures WHERE key = ? OR substr(key, 1, ?) = ?",
            (key, len(key) + 1, key + "|"),
            audit,
        )

    async def delete_expired_login_failures(self, now: float, limit: int) -> int:
        return await self._collect("login_failures", "key", now, limit)
