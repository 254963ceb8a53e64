"""The PostgreSQL dialect: an asyncpg pool shared by the process, for several stateless replicas.

Key-ring changes, migrations, refresh-token rotations and login counters are serialised
across processes with transaction-scoped advisory locks, so replicas can run them at the
same moment without clashing. Key-ring and client changes reach every replica by NOTIFY
(the key ring's sent by the store, the clients' by the triggers of their migration).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg

from idp.store.base import StoreUnavailable
from idp.store.dialects import Connection, Dialect, Row, Work

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    PoolConnection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")

# Errors that mean "the database is not there right now", as opposed to a bug in a query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)
# What opening a connection may raise: those, or the server refusing it (say, a wrong database).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0
# The NOTIFY channel of this schema's key ring: derived from the schema, so that several
# installations (or test schemas) on one database never hear each other's changes.
KEY_RING_CHANNEL_SQL = "'idp_key_ring_' || left(md5(current_schema()), 16)"
# The clients' channel, formed the same way (migration 0009's trigger sends on it).
CLIENTS_CHANNEL_SQL = "'idp_clients_' || left(md5(current_schema()), 16)"
LISTENER_APPLICATION_NAME = "idp-listener "
LISTENER_HEALTH_INTERVAL = 5.0
LISTENER_BACKOFF_FIRST = 0.1
LISTENER_BACKOFF_MAX = 5.0

log = logging.getLogger("idp.store")


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """The statement with its ``?`` placeholders as asyncpg's ``$1``, ``$2``, ..."""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def _count(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3`` (0 for one like ``CREATE TABLE``)."""
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0


def _redacted(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    scheme, _, rest = dsn.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return dsn
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{location}"


class PostgresConnection:
    """A pooled asyncpg connection behind the store's connection interface."""

    def __init__(self, connection: PoolConnection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: object) -> int:
        return _count(await self._connection.execute(numbered(sql), *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._connection.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return await self._connection.fetch(numbered(sql), *args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return await self._connection.fetchrow(numbered(sql), *args)

    async def fetchval(self, sql: str, *args: object) -> Any:
        return await self._connection.fetchval(numbered(sql), *args)

    async def execute_script(self, sql: str) -> None:
        await self._connection.execute(sql)


class PostgresDialect(Dialect):
    """PostgreSQL through an asyncpg connection pool."""

    name = "postgresql"
    unique_violation: tuple[type[BaseException], ...] = (asyncpg.UniqueViolationError,)
    least = "LEAST"
    migrations_table_exists = "SELECT to_regclass('schema_migrations') IS NOT NULL"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    # Rotations within one family run one after another under a transaction-level advisory
    # lock taken before any row lock. Row locks alone can deadlock: an UPDATE that waited
    # for a concurrent rotation keeps its lock on the row even when the row no longer
    # matches, and a second transaction may then lock the family's rows in another order.
    refresh_family_lookup = (
        "SELECT family_id FROM refresh_tokens, pg_advisory_xact_lock(hashtext("
        "current_schema() || ':idp-refresh:' || family_id)) WHERE token_hash = ?"
    )

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
        except CONNECT_ERRORS as exc:
            raise StoreUnavailable(f"cannot connect to {self.description}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=5)
            except CONNECTION_ERRORS:
                self._pool.terminate()
            self._pool = None

    async def run(self, work: Work[T], *, transaction: bool = False, hot: bool = False) -> T:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
                if not transaction:
                    return await work(PostgresConnection(connection))
                async with connection.transaction():
                    return await work(PostgresConnection(connection))
        except CONNECTION_ERRORS as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    def any_of(self, column: str, values: Sequence[str]) -> tuple[str, list[object]]:
        return f"{column} = ANY(?::text[])", [list(values)]

    async def lock(self, connection: Connection, name: str) -> None:
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ?))", f":{name}"
        )

    async def lock_keys(self, connection: Connection, namespace: str, keys: Sequence[str]) -> None:
        # A row lock cannot hold a key that has no row yet; sorted, so callers never deadlock.
        for key in sorted(set(keys)):
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ?, 0))",
                f":{namespace}:{key}",
            )

    async def notify_key_ring(self, connection: Connection) -> None:
        # Delivered to listeners when (and only if) the transaction commits.
        await connection.execute(
            f"SELECT pg_notify({KEY_RING_CHANNEL_SQL}, version::text) "  # noqa: S608
            "FROM key_ring_version WHERE id = 1"
        )

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        await self._watch(KEY_RING_CHANNEL_SQL, "key ring", on_change)

    async def watch_clients(self, on_change: Callable[[], None]) -> None:
        await self._watch(CLIENTS_CHANNEL_SQL, "clients", on_change)

    async def _watch(self, channel_sql: str, what: str, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` on every notification on the channel ``channel_sql`` names,
        until cancelled.

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
                await self._listen(connection, channel_sql, what, on_change, resumed, listened)
                reason = "the connection was closed"
            except CONNECT_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                if connection is not None:
                    connection.terminate()
            if listened:
                backoff, reported, resumed = LISTENER_BACKOFF_FIRST, False, True
            if not reported:
                log.warning("%s listener: %s; reconnecting (polling meanwhile)", what, reason)
                reported = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, LISTENER_BACKOFF_MAX)

    async def _listen(
        self,
        connection: asyncpg.Connection,
        channel_sql: str,
        what: str,
        on_change: Callable[[], None],
        resumed: bool,
        listened: list[bool],
    ) -> None:
        """LISTEN on one connection until it is lost (returns or raises)."""
        channel = await connection.fetchval(f"SELECT {channel_sql}")
        await connection.execute(
            f"SELECT set_config('application_name', '{LISTENER_APPLICATION_NAME}' || "
            f"{channel_sql}, false)"
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(channel, lambda *_: on_change())
        listened.append(True)
        on_change()
        log.info("%s listener: %s on %s", what, "resumed" if resumed else "listening", channel)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), LISTENER_HEALTH_INTERVAL)
            if not lost.is_set():
                await connection.fetchval("SELECT 1", timeout=ACQUIRE_TIMEOUT)
