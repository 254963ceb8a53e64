"""The schema: which numbered migrations (``idp.store.migrations``) are applied, applying the
rest, and the canonical usernames that rows written before migration 6 still lack."""

from __future__ import annotations

import logging
import time
from functools import partial

from idp.store.base import SchemaStatus
from idp.store.dialects import Connection
from idp.store.migrations import Migration, load_migrations
from idp.store.sql.core import SqlBase
from idp.store.usernames import canonical_username

log = logging.getLogger("idp.store")


class Schema(SqlBase):
    """SchemaStore: status and migration (open, close and ping are SqlBase's)."""

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
