"""The embedded store: one SQLite file, zero set-up.

All statements run on one dedicated thread that owns the connection, so the event loop
never blocks on disk and statements never interleave. Several server processes may share
the file: WAL mode lets readers proceed while a writer holds ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from idp.store import codec, rotation
from idp.store.base import (
    SYSTEM,
    Actor,
    AuditEntry,
    AuthorizationCodeRecord,
    ClientRecord,
    CodeRedemption,
    Conflict,
    KeyRecord,
    KeyRingMutation,
    LoginCounter,
    LoginCounterUpdate,
    NewRefreshToken,
    RefreshRotation,
    RefreshTokenRecord,
    RotationOutcome,
    SchemaOutdated,
    SchemaStatus,
    SessionRecord,
    StoreUnavailable,
    UserRecord,
    key_audit_entries,
    user_revocation_id,
)
from idp.store.migrations import load_migrations
from idp.usernames import canonical_username

T = TypeVar("T")


class SQLiteStore:
    """Store backed by a SQLite database file."""

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
        """Connect; without ``create`` a missing file is SchemaOutdated naming the file."""
        if not self.create and not self.path.exists():
            raise SchemaOutdated(
                f"the database schema is missing: {self.description} does not exist; "
                "run `idp migrate` first"
            )

        def connect() -> None:
            if self.create:
                _create_private_file(self.path)
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode={'rwc' if self.create else 'rw'}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=10.0,
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
            _in_transaction(connection, _fill_username_keys)
            return done

        return await self._run(apply)

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        def insert(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    f"INSERT INTO clients ({codec.CLIENT_COLUMNS}) "  # noqa: S608
                    f"VALUES ({_marks(14)})",
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

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        assignments = ", ".join(f"{c} = ?" for c in codec.CLIENT_UPDATE_COLUMNS)
        values = codec.client_values(client)

        def update(connection: sqlite3.Connection) -> bool:
            try:
                count = connection.execute(
                    f"UPDATE clients SET {assignments} WHERE client_id = ?",  # noqa: S608
                    (*values[1:], values[0]),
                ).rowcount
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a client named {client.name!r} already exists") from exc
            if count:
                _insert_audit(connection, audit)
            return bool(count)

        return await self._run(lambda c: _in_transaction(c, update))

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
                    f"INSERT INTO users ({codec.USER_WRITE_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    codec.user_values(user),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc
            _insert_audit(connection, audit)

        await self._run(lambda c: _in_transaction(c, insert))

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.USER_COLUMNS} FROM users WHERE id = ?",  # noqa: S608
                (user_id,),
            ).fetchone()
        )
        return codec.user_from_row(row) if row else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.USER_COLUMNS} FROM users ORDER BY created_at, username"  # noqa: S608
            ).fetchall()
        )
        return [codec.user_from_row(row) for row in rows]

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        assignments = ", ".join(f"{c} = ?" for c in codec.USER_UPDATE_COLUMNS)
        values = codec.user_values(user)

        def update(connection: sqlite3.Connection) -> bool:
            try:
                count = connection.execute(
                    f"UPDATE users SET {assignments} WHERE id = ?",  # noqa: S608
                    (*values[1:], values[0]),
                ).rowcount
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc
            if count:
                _insert_audit(connection, audit)
            return bool(count)

        return await self._run(lambda c: _in_transaction(c, update))

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            count = connection.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
            if count:
                _insert_audit(connection, audit)
            return bool(count)

        return await self._run(lambda c: _in_transaction(c, delete))

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.USER_COLUMNS} FROM users WHERE canonical_username = ?",  # noqa: S608
                (canonical_username(username),),
            ).fetchone()
        )
        return codec.user_from_row(row) if row else None

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        count = await self._run(
            lambda c: (
                c.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
                ).rowcount
            )
        )
        return bool(count)

    # -- browser sessions -----------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        await self._run(
            lambda c: c.execute(
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) "  # noqa: S608
                f"VALUES ({_marks(9)})",
                codec.session_values(session),
            )
        )

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = ?",  # noqa: S608
                (session_id,),
            ).fetchone()
        )
        return codec.session_from_row(row) if row else None

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE sessions SET last_seen_at = ?, idle_expires_at = MIN(?, expires_at) "
                "WHERE id = ? AND ended_at IS NULL",
                (now, idle_expires_at, session_id),
            )
        )

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        row = await self._run(
            lambda c: c.execute(
                "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL "  # noqa: S608
                f"RETURNING {codec.SESSION_COLUMNS}",
                (now, session_id),
            ).fetchone()
        )
        return codec.session_from_row(row) if row else None

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        rows = await self._run(
            lambda c: c.execute(
                "UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL "  # noqa: S608
                f"RETURNING {codec.SESSION_COLUMNS}",
                (now, user_id),
            ).fetchall()
        )
        return [codec.session_from_row(row) for row in rows]

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO session_clients (session_id, client_id, first_used_at) "
                "VALUES (?, ?, ?) ON CONFLICT (session_id, client_id) DO NOTHING",
                (session_id, client_id, now),
            )
        )

    async def list_session_clients(self, session_id: bytes) -> list[str]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT client_id FROM session_clients WHERE session_id = ? "
                "ORDER BY first_used_at, client_id",
                (session_id,),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def delete_expired_sessions(self, now: float, limit: int) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            count = 0
            for column in ("expires_at", "idle_expires_at"):
                if count >= limit:
                    break
                count += _delete_expired(connection, "sessions", "id", now, limit - count, column)
            return count

        return await self._run(delete)

    # -- authorization codes --------------------------------------------------------------

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None:
        await self._run(
            lambda c: c.execute(
                f"INSERT INTO authorization_codes ({codec.CODE_COLUMNS}) "  # noqa: S608
                f"VALUES ({_marks(14)})",
                codec.code_values(code),
            )
        )

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        def consume(connection: sqlite3.Connection) -> CodeRedemption | None:
            # One UPDATE ... RETURNING on the store's single writer connection: the
            # first caller flips consumed_at, every later one finds it already set.
            row = connection.execute(
                "UPDATE authorization_codes SET consumed_at = ? "  # noqa: S608
                "WHERE code_hash = ? AND consumed_at IS NULL "
                f"RETURNING {codec.CODE_COLUMNS}",
                (now, code_hash),
            ).fetchone()
            if row is not None:
                return CodeRedemption(codec.code_from_row(row), already_consumed=False)
            row = connection.execute(
                f"SELECT {codec.CODE_COLUMNS} FROM authorization_codes "  # noqa: S608
                "WHERE code_hash = ?",
                (code_hash,),
            ).fetchone()
            return CodeRedemption(codec.code_from_row(row), True) if row else None

        return await self._run(consume)

    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int:
        return await self._run(
            lambda c: _delete_expired(c, "authorization_codes", "id", now, limit)
        )

    # -- consents -------------------------------------------------------------------------

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        row = await self._run(
            lambda c: c.execute(
                "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
                (user_id, client_id),
            ).fetchone()
        )
        return codec.scope_list(row[0] if row else None)

    async def save_consent(
        self, user_id: str, client_id: str, scope: tuple[str, ...], now: float
    ) -> None:
        def save(connection: sqlite3.Connection) -> None:
            row = connection.execute(
                "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
                (user_id, client_id),
            ).fetchone()
            connection.execute(
                "INSERT INTO consents (user_id, client_id, scope, granted_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, client_id) "
                "DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                (user_id, client_id, codec.merged_scope(row[0] if row else None, scope), now),
            )

        await self._run(lambda c: _in_transaction(c, save))

    # -- refresh tokens -------------------------------------------------------------------

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None:
        await self._run(lambda c: _insert_refresh(c, token))

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        row = await self._run(lambda c: _refresh_by_hash(c, token_hash))
        return codec.refresh_from_row(row) if row else None

    async def rotate_refresh_token(
        self,
        token_hash: bytes,
        *,
        client_id: str,
        successor: NewRefreshToken,
        now: float,
        reuse_grace: float,
    ) -> RefreshRotation:
        def rotate(connection: sqlite3.Connection) -> RefreshRotation:
            return _rotate(connection, token_hash, client_id, successor, now, reuse_grace)

        # BEGIN IMMEDIATE takes the write lock first, so concurrent rotations (from any
        # process on this file) run one after another.
        return await self._run(lambda c: _in_transaction(c, rotate))

    async def revoke_refresh_family(self, family_id: str, now: float) -> int:
        def revoke(connection: sqlite3.Connection) -> int:
            count = _revoke_refresh(connection, "family_id = ?", family_id, now)
            _record_revoked_grants(connection, "VALUES (?, ?)", (family_id, now))
            return count

        return await self._run(lambda c: _in_transaction(c, revoke))

    async def revoke_session_refresh_tokens(self, sid: str, now: float) -> int:
        def revoke(connection: sqlite3.Connection) -> int:
            count = _revoke_refresh(connection, "sid = ? AND offline = 0", sid, now)
            _record_revoked_grants(connection, "VALUES (?, ?)", (sid, now))
            return count

        return await self._run(lambda c: _in_transaction(c, revoke))

    async def revoke_user_refresh_tokens(self, user_id: str, now: float) -> int:
        def revoke(connection: sqlite3.Connection) -> int:
            count = _revoke_refresh(connection, "user_id = ?", user_id, now)
            _record_revoked_grants(
                connection,
                "SELECT DISTINCT family_id, ? FROM refresh_tokens WHERE user_id = ?",
                (now, user_id),
            )
            # The latest end counts: the user may have been enabled and disabled again.
            connection.execute(
                "INSERT INTO revoked_grants (grant_id, revoked_at) VALUES (?, ?) "
                "ON CONFLICT (grant_id) DO UPDATE SET "
                "revoked_at = max(revoked_at, excluded.revoked_at)",
                (user_revocation_id(user_id), now),
            )
            return count

        return await self._run(lambda c: _in_transaction(c, revoke))

    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int:
        return await self._run(lambda c: _delete_expired(c, "refresh_tokens", "id", now, limit))

    # -- revoked access tokens ------------------------------------------------------------

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        count = await self._run(
            lambda c: (
                c.execute(
                    "INSERT INTO revoked_access_tokens (jti, client_id, revoked_at, expires_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
                    (jti, client_id, now, expires_at),
                ).rowcount
            )
        )
        return count > 0

    async def access_token_revoked(
        self,
        jti: str,
        client_id: str,
        grant_ids: Sequence[str] = (),
        user_id: str | None = None,
        issued_at: float = 0.0,
    ) -> bool:
        sql = "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = ?) "
        params: list[object] = [jti]
        if grant_ids:
            sql += (
                "OR EXISTS (SELECT 1 FROM revoked_grants "  # noqa: S608
                f"WHERE grant_id IN ({_marks(len(grant_ids))})) "
            )
            params.extend(grant_ids)
        if user_id is not None:
            sql += (
                "OR EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = ? AND revoked_at >= ?) "
            )
            params.extend((user_revocation_id(user_id), issued_at))
        sql += "OR NOT EXISTS (SELECT 1 FROM clients WHERE client_id = ?)"
        params.append(client_id)
        row = await self._read(lambda c: c.execute(sql, params).fetchone())
        return bool(row[0])

    async def delete_expired_revoked_access_tokens(self, now: float, limit: int) -> int:
        return await self._run(
            lambda c: _delete_expired(c, "revoked_access_tokens", "jti", now, limit)
        )

    async def grant_revoked(self, grant_ids: Sequence[str]) -> bool:
        if not grant_ids:
            return False
        sql = f"SELECT 1 FROM revoked_grants WHERE grant_id IN ({_marks(len(grant_ids))})"  # noqa: S608
        row = await self._read(lambda c: c.execute(sql, tuple(grant_ids)).fetchone())
        return row is not None

    async def delete_revoked_grants_before(self, cutoff: float, limit: int) -> int:
        return await self._run(
            lambda c: _delete_expired(c, "revoked_grants", "grant_id", cutoff, limit, "revoked_at")
        )

    # -- login throttling -----------------------------------------------------------------

    async def update_login_counters(
        self, keys: Sequence[str], now: float, update: LoginCounterUpdate
    ) -> None:
        # BEGIN IMMEDIATE takes the write lock before reading, so the decision and its
        # writes are one step for every process sharing the file.
        def change(connection: sqlite3.Connection) -> None:
            rows = connection.execute(
                f"SELECT {codec.LOGIN_COUNTER_COLUMNS} FROM login_failures "  # noqa: S608
                f"WHERE key IN ({_marks(len(keys))}) AND expires_at > ?",
                (*keys, now),
            ).fetchall()
            live = {row["key"]: codec.login_counter_from_row(row) for row in rows}
            result = update(live)
            if result.forget:
                connection.execute(
                    f"DELETE FROM login_failures WHERE key IN ({_marks(len(result.forget))})",  # noqa: S608
                    tuple(result.forget),
                )
            connection.executemany(
                f"INSERT OR REPLACE INTO login_failures ({codec.LOGIN_COUNTER_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?)",
                [codec.login_counter_values(c) for c in result.put],
            )

        if keys:
            await self._run(lambda c: _in_transaction(c, change))

    async def get_login_counters(self, keys: Sequence[str], now: float) -> list[LoginCounter]:
        marks = ", ".join("?" for _ in keys)
        sql = (
            f"SELECT {codec.LOGIN_COUNTER_COLUMNS} FROM login_failures "  # noqa: S608
            f"WHERE key IN ({marks}) AND expires_at > ? ORDER BY key"
        )
        if not keys:
            return []
        rows = await self._run(lambda c: c.execute(sql, (*keys, now)).fetchall())
        return [codec.login_counter_from_row(row) for row in rows]

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        def clear(connection: sqlite3.Connection) -> bool:
            count = connection.execute(
                "DELETE FROM login_failures WHERE key = ? OR substr(key, 1, ?) = ?",
                (key, len(key) + 1, key + "|"),
            ).rowcount
            if count:
                _insert_audit(connection, audit)
            return bool(count)

        return await self._run(lambda c: _in_transaction(c, clear))

    async def delete_expired_login_failures(self, now: float, limit: int) -> int:
        return await self._run(lambda c: _delete_expired(c, "login_failures", "key", now, limit))

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
        # A point read on the calling thread: introspection reads it on every request.
        row = await self._read(
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

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        await self._run(
            lambda c: c.execute(
                f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}, bucket) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (bucket) DO UPDATE SET count = audit_log.count + 1",
                (*codec.audit_values(entry), bucket),
            )
        )

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {codec.AUDIT_COLUMNS} FROM audit_log WHERE at >= ? "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (since if since is not None else float("-inf"), limit),
            ).fetchall()
        )
        return [codec.audit_from_row(row) for row in reversed(rows)]


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and -shm
    files the same mode); an existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _delete_expired(
    connection: sqlite3.Connection,
    table: str,
    key: str,
    now: float,
    limit: int,
    column: str = "expires_at",
) -> int:
    """Delete at most ``limit`` rows of ``table`` whose ``column`` time has passed, oldest first."""
    return connection.execute(
        f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "  # noqa: S608
        f"WHERE {column} <= ? ORDER BY {column} LIMIT ?)",
        (now, limit),
    ).rowcount


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
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
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


def _fill_username_keys(connection: sqlite3.Connection) -> None:
    """Give rows written before migration 6 their canonical username (see codec)."""
    unkeyed = connection.execute(
        "SELECT id, username FROM users WHERE canonical_username IS NULL ORDER BY created_at, id"
    ).fetchall()
    if not unkeyed:
        return
    taken = {
        row[0]
        for row in connection.execute(
            "SELECT canonical_username FROM users WHERE canonical_username IS NOT NULL"
        )
    }
    assign, clashes = codec.username_keys([(r[0], r[1]) for r in unkeyed], taken)
    connection.executemany("UPDATE users SET canonical_username = ? WHERE id = ?", assign)
    codec.warn_username_clashes(clashes)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _insert_refresh(connection: sqlite3.Connection, token: RefreshTokenRecord) -> None:
    connection.execute(
        f"INSERT INTO refresh_tokens ({codec.REFRESH_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        codec.refresh_values(token),
    )


def _refresh_by_hash(connection: sqlite3.Connection, token_hash: bytes) -> sqlite3.Row | None:
    row: sqlite3.Row | None = connection.execute(
        f"SELECT {codec.REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?",  # noqa: S608
        (token_hash,),
    ).fetchone()
    return row


def _rotate(
    connection: sqlite3.Connection,
    token_hash: bytes,
    client_id: str,
    new: NewRefreshToken,
    now: float,
    reuse_grace: float,
) -> RefreshRotation:
    """One rotation inside the caller's write transaction (see Store.rotate_refresh_token)."""
    consumed = connection.execute(
        "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND client_id = ? "  # noqa: S608
        "AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ? "
        "AND NOT EXISTS (SELECT 1 FROM users WHERE users.id = refresh_tokens.user_id "
        f"AND users.disabled) RETURNING {codec.REFRESH_COLUMNS}",
        (now, token_hash, client_id, now),
    ).fetchall()
    if consumed:
        successor = rotation.successor_of(codec.refresh_from_row(consumed[0]), new, now)
        _insert_refresh(connection, successor)
        return RefreshRotation(RotationOutcome.ROTATED, successor)
    found = _refresh_by_hash(connection, token_hash)
    row = codec.refresh_from_row(found) if found else None
    disabled = bool(
        row
        and connection.execute(
            "SELECT 1 FROM users WHERE id = ? AND disabled", (row.user_id,)
        ).fetchone()
    )
    why = rotation.refusal(row, client_id=client_id, now=now, user_disabled=disabled)
    if why is not None or row is None:
        return RefreshRotation(why or RotationOutcome.UNKNOWN)
    newest = connection.execute(
        "SELECT max(generation) FROM refresh_tokens WHERE family_id = ?", (row.family_id,)
    ).fetchone()[0]
    outcome = rotation.reuse_outcome(
        row, now=now, reuse_grace=reuse_grace, newest_generation=int(newest)
    )
    if outcome is RotationOutcome.GRACE_SIBLING:
        successor = rotation.successor_of(row, new, now)
        _insert_refresh(connection, successor)
        return RefreshRotation(outcome, successor)
    _revoke_refresh(connection, "family_id = ?", row.family_id, now)
    _record_revoked_grants(connection, "VALUES (?, ?)", (row.family_id, now))
    return RefreshRotation(outcome)


def _revoke_refresh(connection: sqlite3.Connection, where: str, value: str, now: float) -> int:
    """Mark the matching unrevoked refresh tokens revoked at ``now``; how many changed."""
    sql = f"UPDATE refresh_tokens SET revoked_at = ? WHERE {where} AND revoked_at IS NULL"  # noqa: S608
    return connection.execute(sql, (now, value)).rowcount


def _record_revoked_grants(
    connection: sqlite3.Connection, rows: str, params: tuple[object, ...]
) -> None:
    """Insert (grant_id, revoked_at) rows given as VALUES or SELECT; a grant ends only once."""
    connection.execute(
        f"INSERT INTO revoked_grants (grant_id, revoked_at) {rows} "
        "ON CONFLICT (grant_id) DO NOTHING",
        params,
    )


def _split_statements(sql: str) -> list[str]:
    """Split a migration file into statements (our migrations hold no ';' inside literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
