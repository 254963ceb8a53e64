"""The one SQL implementation of the Store protocol, for every dialect.

Each method is written once, with ``?`` placeholders, and runs through a dialect
(``idp.store.dialects``) that supplies the driver, error mapping, locking, change
notification and the few SQL spellings that differ between SQLite and PostgreSQL.
A method that writes more than one statement runs them in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
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
    SchemaStatus,
    SessionRecord,
    UserRecord,
    key_audit_entries,
    user_revocation_id,
)
from idp.store.dialects import Connection, Dialect, Row
from idp.store.migrations import Migration, load_migrations
from idp.store.usernames import canonical_username

R = TypeVar("R")


class SqlStore:
    """Store backed by a SQL database, through the dialect that speaks to it."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.description = dialect.description

    async def open(self) -> None:
        await self.dialect.open()

    async def close(self) -> None:
        await self.dialect.close()

    async def ping(self) -> None:
        await self.dialect.run(lambda c: c.fetchval("SELECT 1"))

    # -- schema -------------------------------------------------------------------------

    async def _applied(self, connection: Connection) -> set[int]:
        if not await connection.fetchval(self.dialect.migrations_table_exists):
            return set()
        return {row[0] for row in await connection.fetch("SELECT version FROM schema_migrations")}

    async def schema_status(self) -> SchemaStatus:
        applied = await self.dialect.run(self._applied)
        known = [m.version for m in load_migrations(self.dialect.name)]
        return SchemaStatus(
            applied=tuple(sorted(applied)),
            pending=tuple(v for v in known if v not in applied),
        )

    async def migrate(self) -> list[int]:
        """Apply each pending migration in its own transaction, serialised across processes."""
        done: list[int] = []
        for migration in load_migrations(self.dialect.name):
            if await self.dialect.run(partial(self._apply, migration), transaction=True):
                done.append(migration.version)

        async def fill(connection: Connection) -> None:
            await self.dialect.lock(connection, "idp-migrate")
            await _fill_username_keys(connection)

        await self.dialect.run(fill, transaction=True)
        return done

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

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        await self._change_audited(
            f"INSERT INTO clients ({codec.CLIENT_COLUMNS}) VALUES ({_marks(14)})",  # noqa: S608
            codec.client_values(client),
            audit,
            conflict=f"a client named {client.name!r} already exists",
        )

    async def get_client(self, client_id: str) -> ClientRecord | None:
        # Hot: every token request looks its client up.
        sql = f"SELECT {codec.CLIENT_COLUMNS} FROM clients WHERE client_id = ?"  # noqa: S608
        return await self._one(codec.client_from_row, sql, client_id, hot=True)

    async def list_clients(self) -> list[ClientRecord]:
        sql = f"SELECT {codec.CLIENT_COLUMNS} FROM clients ORDER BY created_at, name"  # noqa: S608
        return await self._all(codec.client_from_row, sql)

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        values = codec.client_values(client)
        return await self._update_audited(
            "clients",
            "client_id",
            codec.CLIENT_UPDATE_COLUMNS,
            values,
            f"a client named {client.name!r} already exists",
            audit,
        )

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        return await self._change_audited(
            "DELETE FROM clients WHERE client_id = ?", (client_id,), audit
        )

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        await self._change_audited(
            f"INSERT INTO users ({codec.USER_WRITE_COLUMNS}) VALUES ({_marks(8)})",  # noqa: S608
            codec.user_values(user),
            audit,
            conflict=f"a user named {user.username!r} already exists",
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        sql = f"SELECT {codec.USER_COLUMNS} FROM users WHERE id = ?"  # noqa: S608
        return await self._one(codec.user_from_row, sql, user_id)

    async def list_users(self) -> list[UserRecord]:
        sql = f"SELECT {codec.USER_COLUMNS} FROM users ORDER BY created_at, username"  # noqa: S608
        return await self._all(codec.user_from_row, sql)

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        return await self._update_audited(
            "users",
            "id",
            codec.USER_UPDATE_COLUMNS,
            codec.user_values(user),
            f"a user named {user.username!r} already exists",
            audit,
        )

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        return await self._change_audited("DELETE FROM users WHERE id = ?", (user_id,), audit)

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        sql = f"SELECT {codec.USER_COLUMNS} FROM users WHERE canonical_username = ?"  # noqa: S608
        return await self._one(codec.user_from_row, sql, canonical_username(username))

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        count = await self.dialect.run(
            lambda c: c.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", password_hash, user_id
            )
        )
        return count > 0

    async def _update_audited(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        values: Sequence[object],
        conflict: str,
        audit: AuditEntry | None,
    ) -> bool:
        """UPDATE every column but the key (``values`` lead with the key), audited if it did."""
        assignments = ", ".join(f"{c} = ?" for c in columns)
        sql = f"UPDATE {table} SET {assignments} WHERE {key} = ?"  # noqa: S608
        return await self._change_audited(sql, (*values[1:], values[0]), audit, conflict=conflict)

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
                await _insert_audit(connection, audit)
            return bool(count)

        try:
            return await self.dialect.run(change, transaction=True)
        except self.dialect.unique_violation as exc:
            if conflict is None:
                raise
            raise Conflict(conflict) from exc

    # -- browser sessions -----------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        await self.dialect.run(
            lambda c: c.execute(
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({_marks(9)})",  # noqa: S608
                *codec.session_values(session),
            )
        )

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        sql = f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = ?"  # noqa: S608
        return await self._one(codec.session_from_row, sql, session_id)

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        await self.dialect.run(
            lambda c: c.execute(
                "UPDATE sessions SET last_seen_at = ?, "  # noqa: S608
                f"idle_expires_at = {self.dialect.least}(CAST(? AS double precision), expires_at) "
                "WHERE id = ? AND ended_at IS NULL",
                now,
                idle_expires_at,
                session_id,
            )
        )

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        rows = await self._end_sessions("id", session_id, now)
        return rows[0] if rows else None

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._end_sessions("user_id", user_id, now)

    async def _end_sessions(self, column: str, value: object, now: float) -> list[SessionRecord]:
        sql = (
            f"UPDATE sessions SET ended_at = ? WHERE {column} = ? AND ended_at IS NULL "  # noqa: S608
            f"RETURNING {codec.SESSION_COLUMNS}"
        )
        return await self._all(codec.session_from_row, sql, now, value)

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        await self.dialect.run(
            lambda c: c.execute(
                "INSERT INTO session_clients (session_id, client_id, first_used_at) "
                "VALUES (?, ?, ?) ON CONFLICT (session_id, client_id) DO NOTHING",
                session_id,
                client_id,
                now,
            )
        )

    async def list_session_clients(self, session_id: bytes) -> list[str]:
        rows = await self.dialect.run(
            lambda c: c.fetch(
                "SELECT client_id FROM session_clients WHERE session_id = ? "
                "ORDER BY first_used_at, client_id",
                session_id,
            )
        )
        return [row[0] for row in rows]

    async def delete_expired_sessions(self, now: float, limit: int) -> int:
        async def delete(connection: Connection) -> int:
            count = 0
            for column in ("expires_at", "idle_expires_at"):
                if count >= limit:
                    break
                count += await self._delete_expired(
                    connection, "sessions", "id", now, limit - count, column
                )
            return count

        return await self.dialect.run(delete)

    # -- authorization codes --------------------------------------------------------------

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None:
        await self.dialect.run(
            lambda c: c.execute(
                f"INSERT INTO authorization_codes ({codec.CODE_COLUMNS}) "  # noqa: S608
                f"VALUES ({_marks(14)})",
                *codec.code_values(code),
            )
        )

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        async def consume(connection: Connection) -> CodeRedemption | None:
            # A single conditional UPDATE: the first caller flips consumed_at (PostgreSQL's
            # row lock queues the others, SQLite has one writer), every later one finds it set.
            row = await connection.fetchrow(
                "UPDATE authorization_codes SET consumed_at = ? "  # noqa: S608
                "WHERE code_hash = ? AND consumed_at IS NULL "
                f"RETURNING {codec.CODE_COLUMNS}",
                now,
                code_hash,
            )
            if row is not None:
                return CodeRedemption(codec.code_from_row(row), already_consumed=False)
            row = await connection.fetchrow(
                f"SELECT {codec.CODE_COLUMNS} FROM authorization_codes WHERE code_hash = ?",  # noqa: S608
                code_hash,
            )
            return CodeRedemption(codec.code_from_row(row), True) if row else None

        return await self.dialect.run(consume)

    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int:
        return await self._collect("authorization_codes", "id", now, limit)

    # -- consents -------------------------------------------------------------------------

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        text = await self.dialect.run(
            lambda c: c.fetchval(
                "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
                user_id,
                client_id,
            )
        )
        return codec.scope_list(text)

    async def save_consent(
        self, user_id: str, client_id: str, scope: tuple[str, ...], now: float
    ) -> None:
        # The row exists (and is locked where rows lock) before the earlier scope is read,
        # so two concurrent consents both end up in it.
        async def save(connection: Connection) -> None:
            await connection.execute(
                "INSERT INTO consents (user_id, client_id, scope, granted_at) "
                "VALUES (?, ?, '[]', ?) ON CONFLICT (user_id, client_id) DO NOTHING",
                user_id,
                client_id,
                now,
            )
            earlier = await connection.fetchval(
                "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?"  # noqa: S608
                + self.dialect.for_update,
                user_id,
                client_id,
            )
            await connection.execute(
                "UPDATE consents SET scope = ?, granted_at = ? WHERE user_id = ? AND client_id = ?",
                codec.merged_scope(earlier, scope),
                now,
                user_id,
                client_id,
            )

        await self.dialect.run(save, transaction=True)

    # -- refresh tokens -------------------------------------------------------------------

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None:
        await self.dialect.run(lambda c: _insert_refresh(c, token))

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        sql = f"SELECT {codec.REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?"  # noqa: S608
        return await self._one(codec.refresh_from_row, sql, token_hash)

    async def rotate_refresh_token(
        self,
        token_hash: bytes,
        *,
        client_id: str,
        successor: NewRefreshToken,
        now: float,
        reuse_grace: float,
    ) -> RefreshRotation:
        async def rotate(connection: Connection) -> RefreshRotation:
            family_id = await connection.fetchval(self.dialect.refresh_family_lookup, token_hash)
            if family_id is None:
                return RefreshRotation(RotationOutcome.UNKNOWN)
            consumed = await connection.fetchrow(
                "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? "  # noqa: S608
                "AND client_id = ? AND rotated_at IS NULL AND revoked_at IS NULL "
                "AND expires_at > ? AND NOT EXISTS (SELECT 1 FROM users "
                "WHERE users.id = refresh_tokens.user_id AND users.disabled) "
                f"RETURNING {codec.REFRESH_COLUMNS}",
                now,
                token_hash,
                client_id,
                now,
            )
            if consumed is not None:
                token = rotation.successor_of(codec.refresh_from_row(consumed), successor, now)
                await _insert_refresh(connection, token)
                return RefreshRotation(RotationOutcome.ROTATED, token)
            return await self._judge_rotated(
                connection, family_id, token_hash, client_id, successor, now, reuse_grace
            )

        return await self.dialect.run(rotate, transaction=True)

    async def _judge_rotated(
        self,
        connection: Connection,
        family_id: str,
        token_hash: bytes,
        client_id: str,
        new: NewRefreshToken,
        now: float,
        reuse_grace: float,
    ) -> RefreshRotation:
        """Why a token was not consumed, and the reuse rule for a rotated one.

        The caller serialises the family's rotations; every row of the family is locked
        as well (where rows lock) before the newest generation is read.
        """
        rows = await connection.fetch(
            f"SELECT {codec.REFRESH_COLUMNS} FROM refresh_tokens "  # noqa: S608
            "WHERE family_id = ? ORDER BY id" + self.dialect.for_update,
            family_id,
        )
        row = next(
            (codec.refresh_from_row(r) for r in rows if bytes(r["token_hash"]) == token_hash),
            None,
        )
        disabled = bool(
            row
            and await connection.fetchval(
                "SELECT 1 FROM users WHERE id = ? AND disabled", row.user_id
            )
        )
        why = rotation.refusal(row, client_id=client_id, now=now, user_disabled=disabled)
        if why is not None or row is None:
            return RefreshRotation(why or RotationOutcome.UNKNOWN)
        newest = max(int(r["generation"]) for r in rows)
        outcome = rotation.reuse_outcome(
            row, now=now, reuse_grace=reuse_grace, newest_generation=newest
        )
        if outcome is RotationOutcome.GRACE_SIBLING:
            successor = rotation.successor_of(row, new, now)
            await _insert_refresh(connection, successor)
            return RefreshRotation(outcome, successor)
        await _revoke_refresh(connection, "family_id = ?", family_id, now)
        await _record_revoked_grants(connection, "VALUES (?, ?)", family_id, now)
        return RefreshRotation(outcome)

    async def revoke_refresh_family(self, family_id: str, now: float) -> int:
        return await self._revoke_grant("family_id = ?", family_id, now)

    async def revoke_session_refresh_tokens(self, sid: str, now: float) -> int:
        return await self._revoke_grant("sid = ? AND NOT offline", sid, now)

    async def _revoke_grant(self, where: str, grant_id: str, now: float) -> int:
        """Revoke the refresh tokens of one grant (a family or a session) and end the grant."""

        async def revoke(connection: Connection) -> int:
            # Refresh rows first, as a rotation locks them, so the two never wait on each other.
            count = await _revoke_refresh(connection, where, grant_id, now)
            await _record_revoked_grants(connection, "VALUES (?, ?)", grant_id, now)
            return count

        return await self.dialect.run(revoke, transaction=True)

    async def revoke_user_refresh_tokens(self, user_id: str, now: float) -> int:
        async def revoke(connection: Connection) -> int:
            count = await _revoke_refresh(connection, "user_id = ?", user_id, now)
            await _record_revoked_grants(
                connection,
                "SELECT DISTINCT family_id, CAST(? AS double precision) FROM refresh_tokens "
                "WHERE user_id = ?",
                now,
                user_id,
            )
            # The latest end counts: the user may have been enabled and disabled again.
            await connection.execute(
                "INSERT INTO revoked_grants (grant_id, revoked_at) VALUES (?, ?) "  # noqa: S608
                "ON CONFLICT (grant_id) DO UPDATE SET revoked_at = "
                f"{self.dialect.greatest}(revoked_grants.revoked_at, excluded.revoked_at)",
                user_revocation_id(user_id),
                now,
            )
            return count

        return await self.dialect.run(revoke, transaction=True)

    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int:
        return await self._collect("refresh_tokens", "id", now, limit)

    # -- revoked access tokens ------------------------------------------------------------

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        count = await self.dialect.run(
            lambda c: c.execute(
                "INSERT INTO revoked_access_tokens (jti, client_id, revoked_at, expires_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
                jti,
                client_id,
                now,
                expires_at,
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
            condition, values = self.dialect.any_of("grant_id", grant_ids)
            sql += f"OR EXISTS (SELECT 1 FROM revoked_grants WHERE {condition}) "  # noqa: S608
            params.extend(values)
        if user_id is not None:
            sql += (
                "OR EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = ? AND revoked_at >= ?) "
            )
            params.extend((user_revocation_id(user_id), issued_at))
        sql += "OR NOT EXISTS (SELECT 1 FROM clients WHERE client_id = ?)"
        params.append(client_id)
        return bool(await self.dialect.run(lambda c: c.fetchval(sql, *params), hot=True))

    async def delete_expired_revoked_access_tokens(self, now: float, limit: int) -> int:
        return await self._collect("revoked_access_tokens", "jti", now, limit)

    async def grant_revoked(self, grant_ids: Sequence[str]) -> bool:
        if not grant_ids:
            return False
        condition, values = self.dialect.any_of("grant_id", grant_ids)
        sql = f"SELECT 1 FROM revoked_grants WHERE {condition} LIMIT 1"  # noqa: S608
        return await self.dialect.run(lambda c: c.fetchval(sql, *values), hot=True) is not None

    async def delete_revoked_grants_before(self, cutoff: float, limit: int) -> int:
        return await self._collect("revoked_grants", "grant_id", cutoff, limit, "revoked_at")

    # -- login throttling -----------------------------------------------------------------

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
                await connection.execute(
                    f"DELETE FROM login_failures WHERE {condition}",  # noqa: S608
                    *values,
                )
            if result.put:
                await connection.executemany(
                    f"INSERT INTO login_failures ({codec.LOGIN_COUNTER_COLUMNS}) "  # noqa: S608
                    f"VALUES ({_marks(6)}) ON CONFLICT (key) DO UPDATE SET "
                    "failures = excluded.failures, "
                    "window_started_at = excluded.window_started_at, "
                    "last_failure_at = excluded.last_failure_at, "
                    "locked_until = excluded.locked_until, expires_at = excluded.expires_at",
                    [codec.login_counter_values(c) for c in result.put],
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
            f"SELECT {codec.LOGIN_COUNTER_COLUMNS} FROM login_failures "  # noqa: S608
            f"WHERE {condition} AND expires_at > ? ORDER BY key",
            *values,
            now,
        )
        return [codec.login_counter_from_row(row) for row in rows]

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        return await self._change_audited(
            "DELETE FROM login_failures WHERE key = ? OR substr(key, 1, ?) = ?",
            (key, len(key) + 1, key + "|"),
            audit,
        )

    async def delete_expired_login_failures(self, now: float, limit: int) -> int:
        return await self._collect("login_failures", "key", now, limit)

    # -- keys -----------------------------------------------------------------------------

    async def list_keys(self) -> list[KeyRecord]:
        return await self.dialect.run(_keys)

    async def key_ring_version(self) -> int:
        # Hot: introspection reads it on every request.
        version = await self.dialect.run(
            lambda c: c.fetchval("SELECT version FROM key_ring_version WHERE id = 1"), hot=True
        )
        return int(version)

    async def change_key_ring(
        self, mutation: KeyRingMutation, actor: Actor | None = None
    ) -> list[KeyRecord]:
        async def change(connection: Connection) -> list[KeyRecord]:
            await self.dialect.lock(connection, "idp-key-ring")
            before = await _keys(connection)
            result = mutation(before)
            await _write_key_change(
                connection, result.inserts, codec.ordered_updates(result.updates)
            )
            if not result.is_empty:
                await connection.execute("UPDATE key_ring_version SET version = version + 1")
                who = actor or Actor(SYSTEM, time.time())
                for entry in key_audit_entries(before, result, who):
                    await _insert_audit(connection, entry)
                await self.dialect.notify_key_ring(connection)
            return await _keys(connection)

        return await self.dialect.run(change, transaction=True)

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        await self.dialect.watch_key_ring(on_change)

    # -- audit ----------------------------------------------------------------------------

    async def record_audit(self, entry: AuditEntry) -> None:
        await self.dialect.run(lambda c: _insert_audit(c, entry))

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        await self.dialect.run(
            lambda c: c.execute(
                f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}, bucket) "  # noqa: S608
                f"VALUES ({_marks(8)}) "
                "ON CONFLICT (bucket) DO UPDATE SET count = audit_log.count + 1",
                *codec.audit_values(entry),
                bucket,
            )
        )

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        rows = await self.dialect.run(
            lambda c: c.fetch(
                f"SELECT {codec.AUDIT_COLUMNS} FROM audit_log WHERE at >= ? "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                since if since is not None else float("-inf"),
                limit,
            )
        )
        return [codec.audit_from_row(row) for row in reversed(rows)]

    # -- helpers ----------------------------------------------------------------------------

    async def _one(
        self, decode: Callable[[Row], R], sql: str, *params: object, hot: bool = False
    ) -> R | None:
        """The one row a query answers, decoded, or None."""
        row = await self.dialect.run(lambda c: c.fetchrow(sql, *params), hot=hot)
        return decode(row) if row is not None else None

    async def _all(self, decode: Callable[[Row], R], sql: str, *params: object) -> list[R]:
        """Every row a statement answers, decoded, in its order."""
        return [decode(row) for row in await self.dialect.run(lambda c: c.fetch(sql, *params))]

    # -- housekeeping ---------------------------------------------------------------------

    async def _collect(
        self, table: str, key: str, now: float, limit: int, column: str = "expires_at"
    ) -> int:
        return await self.dialect.run(
            lambda c: self._delete_expired(c, table, key, now, limit, column)
        )

    async def _delete_expired(
        self,
        connection: Connection,
        table: str,
        key: str,
        now: float,
        limit: int,
        column: str = "expires_at",
    ) -> int:
        """Delete at most ``limit`` rows whose ``column`` time has passed, oldest first."""
        return await connection.execute(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "  # noqa: S608
            f"WHERE {column} <= ? ORDER BY {column} LIMIT ?{self.dialect.skip_locked})",
            now,
            limit,
        )


def _marks(count: int) -> str:
    return ", ".join("?" * count)


async def _keys(connection: Connection) -> list[KeyRecord]:
    rows = await connection.fetch(
        f"SELECT {codec.KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"  # noqa: S608
    )
    return [codec.key_from_row(row) for row in rows]


async def _write_key_change(
    connection: Connection, inserts: tuple[KeyRecord, ...], updates: list[KeyRecord]
) -> None:
    for key in updates:
        await connection.execute(
            "UPDATE signing_keys SET state = ?, private_key_sealed = ?, activated_at = ?, "
            "retired_at = ?, revoked_at = ? WHERE kid = ?",
            key.state,
            key.private_key_sealed,
            key.activated_at,
            key.retired_at,
            key.revoked_at,
            key.kid,
        )
    for key in inserts:
        await connection.execute(
            f"INSERT INTO signing_keys ({codec.KEY_COLUMNS}) VALUES ({_marks(9)})",  # noqa: S608
            *codec.key_values(key),
        )


async def _insert_audit(connection: Connection, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    await connection.execute(
        f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}) VALUES ({_marks(7)})",  # noqa: S608
        *codec.audit_values(entry),
    )


async def _fill_username_keys(connection: Connection) -> None:
    """Give rows written before migration 6 their canonical username (see codec)."""
    unkeyed: list[Row] = await connection.fetch(
        "SELECT id, username FROM users WHERE canonical_username IS NULL ORDER BY created_at, id"
    )
    if not unkeyed:
        return
    taken = {
        row[0]
        for row in await connection.fetch(
            "SELECT canonical_username FROM users WHERE canonical_username IS NOT NULL"
        )
    }
    assign, clashes = codec.username_keys([(r[0], r[1]) for r in unkeyed], taken)
    await connection.executemany("UPDATE users SET canonical_username = ? WHERE id = ?", assign)
    codec.warn_username_clashes(clashes)


async def _insert_refresh(connection: Connection, token: RefreshTokenRecord) -> None:
    await connection.execute(
        f"INSERT INTO refresh_tokens ({codec.REFRESH_COLUMNS}) VALUES ({_marks(15)})",  # noqa: S608
        *codec.refresh_values(token),
    )


async def _revoke_refresh(connection: Connection, where: str, value: str, now: float) -> int:
    """Mark the matching unrevoked refresh tokens revoked at ``now``; how many changed."""
    return await connection.execute(
        f"UPDATE refresh_tokens SET revoked_at = ? WHERE {where} AND revoked_at IS NULL",  # noqa: S608
        now,
        value,
    )


async def _record_revoked_grants(connection: Connection, rows: str, *params: object) -> None:
    """Insert (grant_id, revoked_at) rows given as VALUES or SELECT; a grant ends only once."""
    await connection.execute(
        f"INSERT INTO revoked_grants (grant_id, revoked_at) {rows} "
        "ON CONFLICT (grant_id) DO NOTHING",
        *params,
    )
