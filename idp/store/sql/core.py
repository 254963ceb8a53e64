"""What every part of the SQL store shares: the dialect, record reads, audited changes,
and the batch deletes of expired rows that housekeeping runs."""

from __future__ import annotations

from collections.abc import Sequence

from idp.store.base import AuditEntry, Conflict
from idp.store.codec import AUDIT, R, Table
from idp.store.dialects import Connection, Dialect


class SqlBase:
    """The dialect a store runs on, and the helpers its methods are written with."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.description = dialect.description

    async def open(self) -> None:
        await self.dialect.open()

    async def close(self) -> None:
        await self.dialect.close()

    async def ping(self) -> None:
        await self.dialect.run(lambda c: c.fetchval("SELECT 1"))

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
