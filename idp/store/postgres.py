"""The PostgreSQL store: an asyncpg pool shared by the process, for several stateless replicas.

Key-ring changes and migrations are serialised across processes with a transaction-scoped
advisory lock, so replicas can run them at the same moment without clashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from idp.store import codec
from idp.store.base import (
    SYSTEM,
    Actor,
    AuditEntry,
    ClientRecord,
    Conflict,
    KeyRecord,
    KeyRingMutation,
    SchemaStatus,
    StoreUnavailable,
    UserRecord,
    key_audit_entries,
)
from idp.store.migrations import load_migrations

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

# Errors that mean "the database is not there right now", as opposed to a bug in a query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)
LISTENER_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0
# The NOTIFY channel of this schema's key ring: derived from the schema, so that several
# installations (or test schemas) on one database never hear each other's changes.
KEY_RING_CHANNEL_SQL = "'idp_key_ring_' || left(md5(current_schema()), 16)"
LISTENER_APPLICATION_NAME = "idp-listener "
LISTENER_HEALTH_INTERVAL = 5.0
LISTENER_BACKOFF_FIRST = 0.1
LISTENER_BACKOFF_MAX = 5.0

log = logging.getLogger("idp.store")


def _redacted(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    scheme, _, rest = dsn.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return dsn
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{location}"


class PostgresStore:
    """Store backed by PostgreSQL through an asyncpg connection pool."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.description = f"PostgreSQL {_redacted(dsn)}"
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=ACQUIRE_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable(f"cannot connect to {self.description}: {exc}") from exc
        except asyncpg.PostgresError as exc:
            raise StoreUnavailable(f"cannot connect to {self.description}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=5)
            except CONNECTION_ERRORS:
                self._pool.terminate()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
                yield connection
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        async with self._connection() as connection:
            await connection.fetchval("SELECT 1")

    # -- schema -------------------------------------------------------------------------

    @staticmethod
    async def _applied(connection: Connection) -> set[int]:
        exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            return set()
        return {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }

    async def schema_status(self) -> SchemaStatus:
        async with self._connection() as connection:
            applied = await self._applied(connection)
        known = [m.version for m in load_migrations("postgresql")]
        return SchemaStatus(
            applied=tuple(sorted(applied)),
            pending=tuple(v for v in known if v not in applied),
        )

    async def migrate(self) -> list[int]:
        done: list[int] = []
        async with self._connection() as connection:
            for migration in load_migrations("postgresql"):
                async with connection.transaction():
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':idp-migrate'))"
                    )
                    await connection.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        "version integer PRIMARY KEY, name text NOT NULL, "
                        "applied_at double precision NOT NULL)"
                    )
                    if migration.version in await self._applied(connection):
                        continue
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        time.time(),
                    )
                done.append(migration.version)
        return done

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        async with self._connection() as connection, connection.transaction():
            await _insert_audit(connection, audit)
            try:
                await connection.execute(
                    f"INSERT INTO clients ({codec.CLIENT_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    *codec.client_values(client),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a client named {client.name!r} already exists") from exc

    async def get_client(self, client_id: str) -> ClientRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {codec.CLIENT_COLUMNS} FROM clients WHERE client_id = $1",  # noqa: S608
                client_id,
            )
        return codec.client_from_row(row) if row else None

    async def list_clients(self) -> list[ClientRecord]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.CLIENT_COLUMNS} FROM clients ORDER BY created_at, name"  # noqa: S608
            )
        return [codec.client_from_row(row) for row in rows]

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        async with self._connection() as connection, connection.transaction():
            status = await connection.execute("DELETE FROM clients WHERE client_id = $1", client_id)
            deleted = status != "DELETE 0"
            if deleted:
                await _insert_audit(connection, audit)
        return deleted

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        async with self._connection() as connection, connection.transaction():
            await _insert_audit(connection, audit)
            try:
                await connection.execute(
                    f"INSERT INTO users ({codec.USER_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    *codec.user_values(user),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc

    async def list_users(self) -> list[UserRecord]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.USER_COLUMNS} FROM users ORDER BY created_at, username"  # noqa: S608
            )
        return [codec.user_from_row(row) for row in rows]

    # -- keys -----------------------------------------------------------------------------

    @staticmethod
    async def _keys(connection: Connection) -> list[KeyRecord]:
        rows = await connection.fetch(
            f"SELECT {codec.KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"  # noqa: S608
        )
        return [codec.key_from_row(row) for row in rows]

    async def list_keys(self) -> list[KeyRecord]:
        async with self._connection() as connection:
            return await self._keys(connection)

    async def key_ring_version(self) -> int:
        async with self._connection() as connection:
            version = await connection.fetchval("SELECT version FROM key_ring_version WHERE id = 1")
        return int(version)

    async def change_key_ring(
        self, mutation: KeyRingMutation, actor: Actor | None = None
    ) -> list[KeyRecord]:
        async with self._connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':idp-key-ring'))"
            )
            before = await self._keys(connection)
            result = mutation(before)
            for key in codec.ordered_updates(result.updates):
                await connection.execute(
                    "UPDATE signing_keys SET state = $1, private_key_sealed = $2, "
                    "activated_at = $3, retired_at = $4, revoked_at = $5 WHERE kid = $6",
                    key.state,
                    key.private_key_sealed,
                    key.activated_at,
                    key.retired_at,
                    key.revoked_at,
                    key.kid,
                )
            for key in result.inserts:
                await connection.execute(
                    f"INSERT INTO signing_keys ({codec.KEY_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    *codec.key_values(key),
                )
            if not result.is_empty:
                await connection.execute("UPDATE key_ring_version SET version = version + 1")
                who = actor or Actor(SYSTEM, time.time())
                for entry in key_audit_entries(before, result, who):
                    await _insert_audit(connection, entry)
                # Delivered to listeners when (and only if) the transaction commits.
                await connection.execute(
                    f"SELECT pg_notify({KEY_RING_CHANNEL_SQL}, version::text) "  # noqa: S608
                    "FROM key_ring_version WHERE id = 1"
                )
            return await self._keys(connection)

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` on every committed key-ring change, until cancelled.

        A dedicated connection (outside the pool) LISTENs on this schema's channel; if it is
        lost it is opened again with backoff, and ``on_change`` is called after each
        (re)connection so that a change missed meanwhile is picked up. A silent connection
        is found out by a ``SELECT 1`` every few seconds.
        """
        backoff = LISTENER_BACKOFF_FIRST
        reported = False
        resumed = False
        while True:
            listened: list[bool] = []
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self.dsn, timeout=ACQUIRE_TIMEOUT, command_timeout=COMMAND_TIMEOUT
                )
                await self._listen(connection, on_change, resumed, listened)
                reason = "the connection was closed"
            except LISTENER_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                if connection is not None:
                    connection.terminate()
            if listened:
                backoff, reported, resumed = LISTENER_BACKOFF_FIRST, False, True
            if not reported:
                log.warning("key ring listener: %s; reconnecting (polling meanwhile)", reason)
                reported = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, LISTENER_BACKOFF_MAX)

    async def _listen(
        self,
        connection: asyncpg.Connection,
        on_change: Callable[[], None],
        resumed: bool,
        listened: list[bool],
    ) -> None:
        """LISTEN on one connection until it is lost (returns or raises)."""
        channel = await connection.fetchval(f"SELECT {KEY_RING_CHANNEL_SQL}")
        await connection.execute(
            f"SELECT set_config('application_name', '{LISTENER_APPLICATION_NAME}' || "
            f"{KEY_RING_CHANNEL_SQL}, false)"
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(channel, lambda *_: on_change())
        listened.append(True)
        on_change()
        log.info("key ring listener: %s on %s", "resumed" if resumed else "listening", channel)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), LISTENER_HEALTH_INTERVAL)
            if not lost.is_set():
                await connection.fetchval("SELECT 1", timeout=ACQUIRE_TIMEOUT)

    # -- audit ----------------------------------------------------------------------------

    async def record_audit(self, entry: AuditEntry) -> None:
        async with self._connection() as connection:
            await _insert_audit(connection, entry)

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.AUDIT_COLUMNS} FROM audit_log WHERE at >= $1 "  # noqa: S608
                "ORDER BY id DESC LIMIT $2",
                since if since is not None else float("-inf"),
                limit,
            )
        return [codec.audit_from_row(row) for row in reversed(rows)]


async def _insert_audit(connection: Connection, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    await connection.execute(
        f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5, $6)",
        *codec.audit_values(entry),
    )
