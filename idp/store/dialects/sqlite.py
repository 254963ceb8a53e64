"""The embedded dialect: one SQLite file, zero set-up.

All statements run on one dedicated thread that owns the connection, so the event loop
never blocks on disk and statements never interleave. Several server processes may share
the file: WAL mode lets readers proceed while a writer holds ``BEGIN IMMEDIATE``, which is
also this dialect's only lock (a transaction takes the write lock before it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from idp.store.base import SchemaOutdated, StoreUnavailable
from idp.store.dialects import Dialect, Row, Work

T = TypeVar("T")


class SQLiteConnection:
    """A sqlite3 connection behind the store's async connection interface.

    Its coroutines never wait on anything, so ``_drive`` runs a whole store method's work
    on the thread that owns the connection, in one hop.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: object) -> int:
        return self._connection.execute(sql, args).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return self._connection.execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return self._connection.execute(sql, args).fetchone()

    async def fetchval(self, sql: str, *args: object) -> Any:
        row = self._connection.execute(sql, args).fetchone()
        return row[0] if row is not None else None

    async def execute_script(self, sql: str) -> None:
        for statement in _split_statements(sql):
            self._connection.execute(statement)


class SQLiteDialect(Dialect):
    """SQLite through the standard library, on a dedicated thread (the defaults of Dialect
    hold: ``BEGIN IMMEDIATE`` serialises every transaction, and nothing is notified)."""

    name = "sqlite"
    unique_violation: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
    least = "min"
    migrations_table_exists = (
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    # BEGIN IMMEDIATE already runs rotations one after another.
    refresh_family_lookup = "SELECT family_id FROM refresh_tokens WHERE token_hash = ?"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.create = create
        """Whether ``open`` may create the file (mode 0600) and its directory."""
        self.description = f"SQLite file {path.resolve()}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idp-sqlite")
        self._connection: sqlite3.Connection | None = None
        # Read-only connection used on the event loop's thread for hot point reads: in WAL
        # mode a reader never waits for a writer, and a lookup by primary key in cached
        # pages costs far less than the hop to the store's thread and back.
        self._reader: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect; without ``create`` a missing file is SchemaOutdated naming the file."""
        if not self.create and not self.path.exists():
            raise SchemaOutdated(
                f"the database schema is missing: {self.description} does not exist; "
                "run `idp migrate` first"
            )

        def connect() -> None:
            if self.create:
                _create_private_file(self.path)
            connection = self._connect("rwc" if self.create else "rw", timeout=10.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=10000")
            reader = self._connect("ro", timeout=0)
            self._connection, self._reader = connection, reader

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite file {self.path}: {exc}") from exc

    def _connect(self, mode: str, *, timeout: float) -> sqlite3.Connection:
        """A connection to the file in ``mode`` (``rwc``, ``rw`` or ``ro``), in autocommit."""
        connection = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=timeout,
        )
        connection.row_factory = sqlite3.Row
        return connection

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

    async def run(self, work: Work[T], *, transaction: bool = False, hot: bool = False) -> T:
        if hot:
            if self._reader is None:
                raise StoreUnavailable("the SQLite store is not open")
            try:
                return _drive(work(SQLiteConnection(self._reader)))
            except sqlite3.OperationalError:
                pass  # busy (or the file changed under the reader): take the store's thread

        def call() -> T:
            if self._connection is None:
                raise StoreUnavailable("the SQLite store is not open")
            try:
                if transaction:
                    return _in_transaction(self._connection, work)
                return _drive(work(SQLiteConnection(self._connection)))
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def any_of(self, column: str, values: Sequence[str]) -> tuple[str, list[object]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def _drive(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (its statements are sqlite3 calls) to its end."""
    try:
        work.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("work on a SQLite connection waited on the event loop")


def _in_transaction(connection: sqlite3.Connection, work: Work[T]) -> T:
    """Run ``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolling back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = _drive(work(SQLiteConnection(connection)))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return result


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and -shm
    files the same mode); an existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _split_statements(sql: str) -> list[str]:
    """Split a migration file into statements, each ending at the ``;`` that completes it
    (a trigger's ``BEGIN ... END`` body stays whole; comment lines are dropped)."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
