"""The embedded store: one SQLite file, zero set-up.

All statements run on one dedicated thread that owns the connection, so the event loop
never blocks on disk and statements never interleave. Several server processes may share
the file: WAL mode lets readers proceed while a writer holds ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

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

T = TypeVar("T")


class SQLiteStore:
    """Store backed by a SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"SQLite file {path.resolve()}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idp-sqlite")
        self._connection: sqlite3.Connection | None = None
        # Read-only connection used on the event loop's thread for hot point reads: in WAL
        # mode a reader never waits for a writer, and a lookup by primary key in cached
        # pages costs far less than the hop to the store's thread and back.
        self._reader: sqlite3.Connection | None = None

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a short read on the calling thread; if SQLite is busy, on the store's thread."""
        if self._reader is None:
            raise StoreUnavailable("the SQLite store is not open")
        try:
            return work(self._reader)
        except sqlite3.OperationalError:
            return await self._run(work)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._connection is None:
                raise StoreUnavailable("the SQLite store is not open")
            try:
                return work(self._connection)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=10000")
            reader = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=0,
            )
            reader.row_factory = sqlite3.Row
            self._connection, self._reader = connection, reader

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite file {self.path}: {exc}") from exc

    async def close(self) -> None:
        def disconnect() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    # -- schema -------------------------------------------------------------------------

    @staticmethod
    def _applied(connection: sqlite3.Connection) -> set[int]:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return set()
        return {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}

    async def schema_status(self) -> SchemaStatus:
        applied = await self._run(self._applied)
        known = [m.version for m in load_migrations("sqlite")]
        return SchemaStatus(
            applied=tuple(sorted(applied)),
            pending=tuple(v for v in known if v not in applied),
        )

    async def migrate(self) -> list[int]:
        migrations = load_migrations("sqlite")

        def apply(connection: sqlite3.Connection) -> list[int]:
            done: list[int] = []
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            for migration in migrations:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    if migration.version in self._applied(connection):
                        connection.execute("ROLLBACK")
                        continue
                    for statement in _split_statements(migration.sql):
                        connection.execute(statement)
                    connection.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                done.append(migration.version)
            return done

        return await self._run(apply)

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        def insert(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    f"INSERT INTO clients ({codec.CLIENT_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    codec.client_values(client),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a client named {client.name!r} already exists") from exc
            _insert_audit(connection, audit)

        await self._run(lambda c: _in_transaction(c, insert))

    async def get_client(self, client_id: str) -> ClientRecord | None:
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {codec.CLIENT_COLUMNS} FROM clients WHERE client_id = ?",  # noqa: S608
                (client_id,),
            ).fetchone()
        )
        return codec.client_from_row(row) if row else None

    async def list_clients(self) -> list[ClientRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.CLIENT_COLUMNS} FROM clients ORDER BY created_at, name"  # noqa: S608
            ).fetchall()
        )
        return [codec.client_from_row(row) for row in rows]

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            count = connection.execute(
                "DELETE FROM clients WHERE client_id = ?", (client_id,)
            ).rowcount
            if count:
                _insert_audit(connection, audit)
            return bool(count)

        return await self._run(lambda c: _in_transaction(c, delete))

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        def insert(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    f"INSERT INTO users ({codec.USER_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    codec.user_values(user),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc
            _insert_audit(connection, audit)

        await self._run(lambda c: _in_transaction(c, insert))

    async def list_users(self) -> list[UserRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.USER_COLUMNS} FROM users ORDER BY created_at, username"  # noqa: S608
            ).fetchall()
        )
        return [codec.user_from_row(row) for row in rows]

    # -- keys -----------------------------------------------------------------------------

    @staticmethod
    def _keys(connection: sqlite3.Connection) -> list[KeyRecord]:
        rows = connection.execute(
            f"SELECT {codec.KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"  # noqa: S608
        ).fetchall()
        return [codec.key_from_row(row) for row in rows]

    async def list_keys(self) -> list[KeyRecord]:
        return await self._run(self._keys)

    async def key_ring_version(self) -> int:
        row = await self._run(
            lambda c: c.execute("SELECT version FROM key_ring_version WHERE id = 1").fetchone()
        )
        return int(row[0])

    async def change_key_ring(
        self, mutation: KeyRingMutation, actor: Actor | None = None
    ) -> list[KeyRecord]:
        def change(connection: sqlite3.Connection) -> list[KeyRecord]:
            before = self._keys(connection)
            result = mutation(before)
            _write_key_change(connection, result.inserts, codec.ordered_updates(result.updates))
            if not result.is_empty:
                connection.execute("UPDATE key_ring_version SET version = version + 1")
                who = actor or Actor(SYSTEM, time.time())
                for entry in key_audit_entries(before, result, who):
                    _insert_audit(connection, entry)
            return self._keys(connection)

        return await self._run(lambda c: _in_transaction(c, change))

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        """SQLite has no notifications: returns at once, and readers rely on polling."""
        return

    # -- audit ----------------------------------------------------------------------------

    async def record_audit(self, entry: AuditEntry) -> None:
        await self._run(lambda c: _insert_audit(c, entry))

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.AUDIT_COLUMNS} FROM audit_log WHERE at >= ? "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (since if since is not None else float("-inf"), limit),
            ).fetchall()
        )
        return [codec.audit_from_row(row) for row in reversed(rows)]


def _in_transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolling back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return result


def _insert_audit(connection: sqlite3.Connection, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    connection.execute(
        f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?)",
        codec.audit_values(entry),
    )


def _write_key_change(
    connection: sqlite3.Connection,
    inserts: tuple[KeyRecord, ...],
    updates: list[KeyRecord],
) -> None:
    for key in updates:
        connection.execute(
            "UPDATE signing_keys SET state = ?, private_key_sealed = ?, activated_at = ?, "
            "retired_at = ?, revoked_at = ? WHERE kid = ?",
            (
                key.state,
                key.private_key_sealed,
                key.activated_at,
                key.retired_at,
                key.revoked_at,
                key.kid,
            ),
        )
    for key in inserts:
        connection.execute(
            f"INSERT INTO signing_keys ({codec.KEY_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            codec.key_values(key),
        )


def _split_statements(sql: str) -> list[str]:
    """Split a migration file into statements (our migrations hold no ';' inside literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
