"""What every part of the SQL store shares: the dialect and the schema (the SchemaStore role,
with the numbered migrations of ``idp.store.migrations``), record reads, audited changes,
and the batch deletes of expired rows that housekeeping runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial

from idp.store.base import AuditEntry, Conflict, SchemaStatus
from idp.store.codec import AUDIT, R, Table
from idp.store.dialects import Connection, Dialect
from idp.store.migrations import Migration, load_migrations
from idp.store.usernames import canonical_username

log = logging.getLogger("idp.store")


class SqlBase:
    """The dialect a store runs on, its schema, and the helpers its methods are written with."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.description = dialect.description

    async def open(self) -> None:
        await self.dialect.open()

    async def close(self) -> None:
        await self.dialect.close()

    async def ping(self) -> None:
        await self.dialect.run(lambda c: c.fetchval("SELECT 1"))

    async def schema_status(self) -> SchemaStatus:
        applied = await self.dialect.run(self._applied)
        known = [m.version for m in load_migrations(self.dialect.name)]
        return SchemaStatus(
            applied=tuple(sorted(applied)),
            pending=tuple(v for v in known if v not in applied),
        )

    async def migrate(self) -> list[int]:
        done: list[int] = []
        for migration in load_migrations(self.dialect.name):
            if await self.dialect.run(partial(self._apply, migration), transaction=True):
                done.append(migration.version)
        await self.dialect.run(self._fill_username_keys, transaction=True)
        return done

    async def _applied(self, connection: Connection) -> set[int]:
        if not await connection.fetchval(self.dialect.migrations_table_exists):
            return set()
        return {row[0] for row in await connection.fetch("SELECT version FROM schema_migrations")}

    async def _apply(self, migration: Migration, connection: Connection) -> bool:
        """Apply one migration unless another process has; whether this one did."""
        await self.dialect.lock(connection, "idp-migrate")
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at double precision NOT NULL)"
        )
        if migration.version in await self._applied(connection):
            return False
        await connection.execute_script(migration.sql)
        await connection.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            migration.version,
            migration.name,
            time.time(),
        )
        return True

    async def _fill_username_keys(self, connection: Connection) -> None:
        """Give each user without a canonical username one, oldest first; an account whose
        form an older one holds keeps none (nobody can sign in to it) and is named in the log."""
        await self.dialect.lock(connection, "idp-migrate")
        unkeyed = await connection.fetch(
            "SELECT id, username FROM users WHERE canonical_username IS NULL "
            "ORDER BY created_at, id"
        )
        if not unkeyed:
            return
        held = {
            row[0]
            for row in await connection.fetch(
                "SELECT canonical_username FROM users WHERE canonical_username IS NOT NULL"
            )
        }
        for user_id, username in ((row[0], row[1]) for row in unkeyed):
            key = canonical_username(username)
            if key in held:
                log.warning(
                    "user %s (%r): an older account has the same username up to case and "
                    "Unicode form, so nobody can sign in to this one; delete it with: "
                    "idp users delete %s",
                    user_id,
                    username,
                    user_id,
                )
                continue
            held.add(key)
            await connection.execute(
                "UPDATE users SET canonical_username = ? WHERE id = ?", key, user_id
            )

    async def _execute(self, sql: str, *params: object) -> int:
        """Run one statement on its own; how many rows it changed."""
        return await self.dialect.run(lambda c: c.execute(sql, *params))

    async def _get(
        self, table: Table[R], where: str, *params: object, hot: bool = False
    ) -> R | None:
        """The record of the one row of ``table`` that ``where`` picks, or None."""
        sql = f"{table.select} WHERE {where}"
        row = await self.dialect.run(lambda c: c.fetchrow(sql, *params), hot=hot)
        return table.from_row(row) if row is not None else None

    async def _list(self, table: Table[R], sql: str, *params: object) -> list[R]:
        """The records of every row a statement answers, in its order."""
        rows = await self.dialect.run(lambda c: c.fetch(sql, *params))
        return [table.from_row(row) for row in rows]

    async def _change_audited(
        self,
        sql: str,
        params: Sequence[object],
        audit: AuditEntry | None,
        *,
        conflict: str | None = None,
    ) -> bool:
        """Run one INSERT, UPDATE or DELETE, recording ``audit`` in the same transaction if
        it changed a row; a broken unique constraint is Conflict(``conflict``)."""

        async def change(connection: Connection) -> bool:
            count = await connection.execute(sql, *params)
            if count:
                await insert_audit(connection, audit)
            return bool(count)

        try:
            return await self.dialect.run(change, transaction=True)
        except self.dialect.unique_violation as exc:
            if conflict is None:
                raise
            raise Conflict(conflict) from exc

    async def _collect(
        self, table: str, key: str, now: float, limit: int, column: str = "expires_at"
    ) -> int:
        """Delete at most ``limit`` rows of ``table`` whose ``column`` time is past; the count."""
        return await self.dialect.run(
            lambda c: self._delete_expired(c, table, key, now, limit, column)
        )

    async def _delete_expired(
        self, connection: Connection, table: str, key: str, now: float, limit: int, column: str
    ) -> int:
        """The one batch-delete statement, oldest first (replicas skip each other's rows)."""
        return await connection.execute(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "  # noqa: S608
            f"WHERE {column} <= ? ORDER BY {column} LIMIT ?{self.dialect.skip_locked})",
            now,
            limit,
        )


async def insert(connection: Connection, table: Table[R], record: R) -> None:
    """Insert one record as a row of its table."""
    await connection.execute(table.insert, *table.values(record))


async def insert_audit(connection: Connection, entry: AuditEntry | None) -> None:
    """Write one audit row, if there is one, in the caller's transaction."""
    if entry is not None:
        await insert(connection, AUDIT, entry)
