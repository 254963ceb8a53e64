"""What the one SQL store needs from a database: a driver and the few forms that differ.

The store (``idp.store.sql``) writes every statement once, with ``?`` placeholders, and runs
it through a dialect: ``sqlite`` (stdlib sqlite3 on a dedicated thread, plus a read-only
connection for hot point reads) or ``postgresql`` (an asyncpg pool; ``?`` become ``$n``).
A dialect supplies the driver, error mapping, locking, change notification and the few
SQL spellings that differ; the store supplies every query.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# A result row: sqlite3.Row or asyncpg.Record, read by position or by column name.
Row = Any


class Connection(Protocol):
    """One connection, as a store method sees it: statements with ``?`` placeholders."""

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...
    async def fetchval(self, sql: str, *args: object) -> Any: ...

    async def execute(self, sql: str, *args: object) -> int:
        """Run one statement; how many rows it changed."""

    async def execute_script(self, sql: str) -> None:
        """Run a migration file (several statements)."""


# A store method's statements: a coroutine run on one connection.
Work = Callable[[Connection], Coroutine[Any, Any, T]]


class Dialect(Protocol):
    """A database as the SQL store uses it; each dialect subclasses this.

    The defaults suit a database whose write transactions run one at a time from their
    start (SQLite's ``BEGIN IMMEDIATE``): no row locks, nothing more to lock, and no change
    notifications (readers poll the key ring's and the clients' versions instead).
    """

    name: str
    """The folder of this dialect's migrations under ``migrations/``."""
    description: str
    """Where the data is, for messages (never with a password)."""
    unique_violation: tuple[type[BaseException], ...]
    """What a statement raises when it breaks a unique constraint (the store's Conflict)."""
    least: str
    """The two-argument scalar minimum function."""
    migrations_table_exists: str
    """A query answering one truthy row when ``schema_migrations`` exists."""
    refresh_family_lookup: str
    """``SELECT family_id`` of the refresh token whose hash is ``?``, serialising the
    rotations of that family until the transaction ends."""
    skip_locked: str = ""
    """Appended to the subquery that picks expired rows: replicas take different rows."""
    for_update: str = ""
    """Appended to a SELECT whose rows the transaction goes on to change."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def run(self, work: Work[T], *, transaction: bool = False, hot: bool = False) -> T:
        """Run ``work`` on a connection, in one transaction when asked.

        A transaction on a dialect without row locks holds the database's write lock from
        its start, so everything it reads and writes is one step. ``hot`` marks a short
        point read that may run on the caller's thread where the dialect allows it.
        Connection failures become StoreUnavailable.
        """

    def any_of(self, column: str, values: Sequence[str]) -> tuple[str, list[object]]:
        """A condition ``column`` is one of ``values`` (not empty), with its parameters."""

    async def lock(self, connection: Connection, name: str) -> None:
        """Serialise, until the transaction ends, every transaction that locks ``name``."""
        return None  # by default the transaction already holds the one write lock

    async def lock_keys(self, connection: Connection, namespace: str, keys: Sequence[str]) -> None:
        """Serialise per key (rows that may not exist yet), in an order free of deadlocks."""
        return None  # as lock()

    async def notify_key_ring(self, connection: Connection) -> None:
        """Tell every replica, when the transaction commits, that the key ring changed."""
        return None  # by default there are no notifications: readers poll

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` on every committed key-ring change (see Store.watch_key_ring);
        by default return at once, as there are no notifications."""
        return None

    async def watch_clients(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` on every committed change to the clients (the migrations'
        triggers send the notification); by default return at once, as watch_key_ring."""
        return None
