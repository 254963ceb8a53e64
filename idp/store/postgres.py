"""The PostgreSQL store: an asyncpg pool shared by the process, for several stateless replicas.

Key-ring changes and migrations are serialised across processes with a transaction-scoped
advisory lock, so replicas can run them at the same moment without clashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

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
    StoreUnavailable,
    UserRecord,
    key_audit_entries,
    user_revocation_id,
)
from idp.store.migrations import load_migrations
from idp.usernames import canonical_username

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
            async with connection.transaction():
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':idp-migrate'))"
                )
                await _fill_username_keys(connection)
        return done

    # -- clients --------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        async with self._connection() as connection, connection.transaction():
            await _insert_audit(connection, audit)
            try:
                await connection.execute(
                    f"INSERT INTO clients ({codec.CLIENT_COLUMNS}) "  # noqa: S608
                    f"VALUES ({_marks(14)})",
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

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        assignments = ", ".join(
            f"{c} = ${i}" for i, c in enumerate(codec.CLIENT_UPDATE_COLUMNS, start=2)
        )
        async with self._connection() as connection, connection.transaction():
            try:
                status = await connection.execute(
                    f"UPDATE clients SET {assignments} WHERE client_id = $1",  # noqa: S608
                    *codec.client_values(client),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a client named {client.name!r} already exists") from exc
            updated = status != "UPDATE 0"
            if updated:
                await _insert_audit(connection, audit)
        return updated

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
                    f"INSERT INTO users ({codec.USER_WRITE_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    *codec.user_values(user),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc

    async def get_user(self, user_id: str) -> UserRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {codec.USER_COLUMNS} FROM users WHERE id = $1",  # noqa: S608
                user_id,
            )
        return codec.user_from_row(row) if row else None

    async def list_users(self) -> list[UserRecord]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.USER_COLUMNS} FROM users ORDER BY created_at, username"  # noqa: S608
            )
        return [codec.user_from_row(row) for row in rows]

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        assignments = ", ".join(
            f"{c} = ${i}" for i, c in enumerate(codec.USER_UPDATE_COLUMNS, start=2)
        )
        async with self._connection() as connection, connection.transaction():
            try:
                status = await connection.execute(
                    f"UPDATE users SET {assignments} WHERE id = $1",  # noqa: S608
                    *codec.user_values(user),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a user named {user.username!r} already exists") from exc
            updated = status != "UPDATE 0"
            if updated:
                await _insert_audit(connection, audit)
        return updated

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        async with self._connection() as connection, connection.transaction():
            status = await connection.execute("DELETE FROM users WHERE id = $1", user_id)
            deleted = status != "DELETE 0"
            if deleted:
                await _insert_audit(connection, audit)
        return deleted

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {codec.USER_COLUMNS} FROM users WHERE canonical_username = $1",  # noqa: S608
                canonical_username(username),
            )
        return codec.user_from_row(row) if row else None

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        async with self._connection() as connection:
            status = await connection.execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2", password_hash, user_id
            )
        return status != "UPDATE 0"

    # -- browser sessions -----------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        async with self._connection() as connection:
            await connection.execute(
                f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) "  # noqa: S608
                f"VALUES ({_marks(9)})",
                *codec.session_values(session),
            )

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = $1",  # noqa: S608
                session_id,
            )
        return codec.session_from_row(row) if row else None

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE sessions SET last_seen_at = $1, "
                "idle_expires_at = LEAST($2::double precision, expires_at) "
                "WHERE id = $3 AND ended_at IS NULL",
                now,
                idle_expires_at,
                session_id,
            )

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL "  # noqa: S608
                f"RETURNING {codec.SESSION_COLUMNS}",
                now,
                session_id,
            )
        return codec.session_from_row(row) if row else None

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL "  # noqa: S608
                f"RETURNING {codec.SESSION_COLUMNS}",
                now,
                user_id,
            )
        return [codec.session_from_row(row) for row in rows]

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "INSERT INTO session_clients (session_id, client_id, first_used_at) "
                "VALUES ($1, $2, $3) ON CONFLICT (session_id, client_id) DO NOTHING",
                session_id,
                client_id,
                now,
            )

    async def list_session_clients(self, session_id: bytes) -> list[str]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT client_id FROM session_clients WHERE session_id = $1 "
                "ORDER BY first_used_at, client_id",
                session_id,
            )
        return [row["client_id"] for row in rows]

    async def delete_expired_sessions(self, now: float, limit: int) -> int:
        count = 0
        for column in ("expires_at", "idle_expires_at"):
            if count >= limit:
                break
            count += await self._delete_expired("sessions", "id", now, limit - count, column)
        return count

    # -- authorization codes --------------------------------------------------------------

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None:
        async with self._connection() as connection:
            await connection.execute(
                f"INSERT INTO authorization_codes ({codec.CODE_COLUMNS}) "  # noqa: S608
                f"VALUES ({_marks(14)})",
                *codec.code_values(code),
            )

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        async with self._connection() as connection:
            # A single conditional UPDATE: the row lock makes concurrent callers queue,
            # and each re-checks consumed_at after the winner commits.
            row = await connection.fetchrow(
                "UPDATE authorization_codes SET consumed_at = $1 "  # noqa: S608
                "WHERE code_hash = $2 AND consumed_at IS NULL "
                f"RETURNING {codec.CODE_COLUMNS}",
                now,
                code_hash,
            )
            if row is not None:
                return CodeRedemption(codec.code_from_row(row), already_consumed=False)
            row = await connection.fetchrow(
                f"SELECT {codec.CODE_COLUMNS} FROM authorization_codes "  # noqa: S608
                "WHERE code_hash = $1",
                code_hash,
            )
        return CodeRedemption(codec.code_from_row(row), True) if row else None

    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int:
        return await self._delete_expired("authorization_codes", "id", now, limit)

    # -- consents -------------------------------------------------------------------------

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        async with self._connection() as connection:
            text = await connection.fetchval(
                "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2",
                user_id,
                client_id,
            )
        return codec.scope_list(text)

    async def save_consent(
        self, user_id: str, client_id: str, scope: tuple[str, ...], now: float
    ) -> None:
        async with self._connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO consents (user_id, client_id, scope, granted_at) "
                "VALUES ($1, $2, '[]', $3) ON CONFLICT (user_id, client_id) DO NOTHING",
                user_id,
                client_id,
                now,
            )
            earlier = await connection.fetchval(
                "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 FOR UPDATE",
                user_id,
                client_id,
            )
            await connection.execute(
                "UPDATE consents SET scope = $1, granted_at = $2 "
                "WHERE user_id = $3 AND client_id = $4",
                codec.merged_scope(earlier, scope),
                now,
                user_id,
                client_id,
            )

    # -- refresh tokens -------------------------------------------------------------------

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None:
        async with self._connection() as connection:
            await _insert_refresh(connection, token)

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {codec.REFRESH_COLUMNS} FROM refresh_tokens "  # noqa: S608
                "WHERE token_hash = $1",
                token_hash,
            )
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
        async with self._connection() as connection, connection.transaction():
            # Rotations within one family run one after another under a transaction-level
            # advisory lock taken before any row lock. Row locks alone can deadlock: an
            # UPDATE that waited for a concurrent rotation keeps its lock on the row even
            # when the row no longer matches, and a second transaction may then lock the
            # family's rows in another order.
            family_id = await connection.fetchval(
                "SELECT family_id FROM refresh_tokens, pg_advisory_xact_lock(hashtext("
                "current_schema() || ':idp-refresh:' || family_id)) WHERE token_hash = $1",
                token_hash,
            )
            if family_id is None:
                return RefreshRotation(RotationOutcome.UNKNOWN)
            consumed = await connection.fetchrow(
                "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 "  # noqa: S608
                "AND client_id = $3 AND rotated_at IS NULL AND revoked_at IS NULL "
                "AND expires_at > $1 AND NOT EXISTS (SELECT 1 FROM users "
                "WHERE users.id = refresh_tokens.user_id AND users.disabled) "
                f"RETURNING {codec.REFRESH_COLUMNS}",
                now,
                token_hash,
                client_id,
            )
            if consumed is not None:
                successor_row = rotation.successor_of(
                    codec.refresh_from_row(consumed), successor, now
                )
                await _insert_refresh(connection, successor_row)
                return RefreshRotation(RotationOutcome.ROTATED, successor_row)
            return await _judge_rotated(
                connection, family_id, token_hash, client_id, successor, now, reuse_grace
            )

    async def revoke_refresh_family(self, family_id: str, now: float) -> int:
        async with self._connection() as connection, connection.transaction():
            # Refresh rows first, as a rotation locks them, so the two never wait on each other.
            count = await _revoke_refresh(connection, "family_id = $2", family_id, now)
            await _record_revoked_grants(connection, "VALUES ($1, $2)", family_id, now)
            return count

    async def revoke_session_refresh_tokens(self, sid: str, now: float) -> int:
        async with self._connection() as connection, connection.transaction():
            count = await _revoke_refresh(connection, "sid = $2 AND NOT offline", sid, now)
            await _record_revoked_grants(connection, "VALUES ($1, $2)", sid, now)
            return count

    async def revoke_user_refresh_tokens(self, user_id: str, now: float) -> int:
        async with self._connection() as connection, connection.transaction():
            count = await _revoke_refresh(connection, "user_id = $2", user_id, now)
            await _record_revoked_grants(
                connection,
                "SELECT DISTINCT family_id, $2::double precision FROM refresh_tokens "
                "WHERE user_id = $1",
                user_id,
                now,
            )
            # The latest end counts: the user may have been enabled and disabled again.
            await connection.execute(
                "INSERT INTO revoked_grants (grant_id, revoked_at) VALUES ($1, $2) "
                "ON CONFLICT (grant_id) DO UPDATE SET "
                "revoked_at = GREATEST(revoked_grants.revoked_at, EXCLUDED.revoked_at)",
                user_revocation_id(user_id),
                now,
            )
            return count

    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int:
        return await self._delete_expired("refresh_tokens", "id", now, limit)

    async def _delete_expired(
        self, table: str, key: str, now: float, limit: int, column: str = "expires_at"
    ) -> int:
        """Delete at most ``limit`` rows whose ``column`` time has passed, oldest first."""
        # SKIP LOCKED: replicas collecting at the same moment take different rows.
        async with self._connection() as connection:
            status = await connection.execute(
                f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "  # noqa: S608
                f"WHERE {column} <= $1 ORDER BY {column} LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now,
                limit,
            )
        return _count(status)

    # -- revoked access tokens ------------------------------------------------------------

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        async with self._connection() as connection:
            status = await connection.execute(
                "INSERT INTO revoked_access_tokens (jti, client_id, revoked_at, expires_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
                jti,
                client_id,
                now,
                expires_at,
            )
        return _count(status) > 0

    async def access_token_revoked(
        self,
        jti: str,
        client_id: str,
        grant_ids: Sequence[str] = (),
        user_id: str | None = None,
        issued_at: float = 0.0,
    ) -> bool:
        async with self._connection() as connection:
            revoked = await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) "
                "OR EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = ANY($2::text[])) "
                "OR EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = $4 "
                "AND revoked_at >= $5) "
                "OR NOT EXISTS (SELECT 1 FROM clients WHERE client_id = $3)",
                jti,
                list(grant_ids),
                client_id,
                user_revocation_id(user_id) if user_id is not None else None,
                issued_at,
            )
        return bool(revoked)

    async def delete_expired_revoked_access_tokens(self, now: float, limit: int) -> int:
        return await self._delete_expired("revoked_access_tokens", "jti", now, limit)

    async def grant_revoked(self, grant_ids: Sequence[str]) -> bool:
        async with self._connection() as connection:
            found = await connection.fetchval(
                "SELECT 1 FROM revoked_grants WHERE grant_id = ANY($1::text[]) LIMIT 1",
                list(grant_ids),
            )
        return found is not None

    async def delete_revoked_grants_before(self, cutoff: float, limit: int) -> int:
        return await self._delete_expired("revoked_grants", "grant_id", cutoff, limit, "revoked_at")

    # -- login throttling -----------------------------------------------------------------

    async def update_login_counters(
        self, keys: Sequence[str], now: float, update: LoginCounterUpdate
    ) -> None:
        # A row lock cannot hold a key that has no row yet, so each key gets a
        # transaction-scoped advisory lock, taken in sorted order (no deadlock between
        # callers); the decision and its writes happen under them.
        if not keys:
            return
        async with self._connection() as connection, connection.transaction():
            for key in sorted(set(keys)):
                await connection.execute(
                    "SELECT pg_advisory_xact_lock("
                    "hashtextextended(current_schema() || ':login:' || $1, 0))",
                    key,
                )
            rows = await connection.fetch(
                f"SELECT {codec.LOGIN_COUNTER_COLUMNS} FROM login_failures "  # noqa: S608
                "WHERE key = ANY($1::text[]) AND expires_at > $2",
                list(keys),
                now,
            )
            live = {row["key"]: codec.login_counter_from_row(row) for row in rows}
            result = update(live)
            if result.forget:
                await connection.execute(
                    "DELETE FROM login_failures WHERE key = ANY($1::text[])", list(result.forget)
                )
            if result.put:
                await connection.executemany(
                    f"INSERT INTO login_failures ({codec.LOGIN_COUNTER_COLUMNS}) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET "
                    "failures = EXCLUDED.failures, "
                    "window_started_at = EXCLUDED.window_started_at, "
                    "last_failure_at = EXCLUDED.last_failure_at, "
                    "locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at",
                    [codec.login_counter_values(c) for c in result.put],
                )

    async def get_login_counters(self, keys: Sequence[str], now: float) -> list[LoginCounter]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.LOGIN_COUNTER_COLUMNS} FROM login_failures "  # noqa: S608
                "WHERE key = ANY($1::text[]) AND expires_at > $2 ORDER BY key",
                list(keys),
                now,
            )
        return [codec.login_counter_from_row(row) for row in rows]

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        async with self._connection() as connection, connection.transaction():
            status = await connection.execute(
                "DELETE FROM login_failures WHERE key = $1 OR starts_with(key, $1 || '|')", key
            )
            cleared = _count(status) > 0
            if cleared:
                await _insert_audit(connection, audit)
        return cleared

    async def delete_expired_login_failures(self, now: float, limit: int) -> int:
        return await self._delete_expired("login_failures", "key", now, limit)

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

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        async with self._connection() as connection:
            await connection.execute(
                f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}, bucket) "  # noqa: S608
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "ON CONFLICT (bucket) DO UPDATE SET count = audit_log.count + 1",
                *codec.audit_values(entry),
                bucket,
            )

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                f"SELECT {codec.AUDIT_COLUMNS} FROM audit_log WHERE at >= $1 "  # noqa: S608
                "ORDER BY id DESC LIMIT $2",
                since if since is not None else float("-inf"),
                limit,
            )
        return [codec.audit_from_row(row) for row in reversed(rows)]


async def _fill_username_keys(connection: Connection) -> None:
    """Give rows written before migration 6 their canonical username (see codec)."""
    unkeyed = await connection.fetch(
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
    await connection.executemany("UPDATE users SET canonical_username = $1 WHERE id = $2", assign)
    codec.warn_username_clashes(clashes)


async def _insert_audit(connection: Connection, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    await connection.execute(
        f"INSERT INTO audit_log ({codec.AUDIT_INSERT_COLUMNS}) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        *codec.audit_values(entry),
    )


def _marks(count: int) -> str:
    return ", ".join(f"${n}" for n in range(1, count + 1))


def _count(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3`` or ``DELETE 0``."""
    return int(status.rsplit(" ", 1)[-1])


async def _insert_refresh(connection: Connection, token: RefreshTokenRecord) -> None:
    await connection.execute(
        f"INSERT INTO refresh_tokens ({codec.REFRESH_COLUMNS}) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        *codec.refresh_values(token),
    )


async def _judge_rotated(
    connection: Connection,
    family_id: str,
    token_hash: bytes,
    client_id: str,
    new: NewRefreshToken,
    now: float,
    reuse_grace: float,
) -> RefreshRotation:
    """Why a token was not consumed, and the reuse rule for a rotated one.

    The caller holds the family's advisory lock, so no other rotation of the family runs;
    every row of the family is locked as well before the newest generation is read.
    """
    rows = await connection.fetch(
        f"SELECT {codec.REFRESH_COLUMNS} FROM refresh_tokens "  # noqa: S608
        "WHERE family_id = $1 ORDER BY id FOR UPDATE",
        family_id,
    )
    row = next(
        (codec.refresh_from_row(r) for r in rows if bytes(r["token_hash"]) == token_hash), None
    )
    disabled = bool(
        row and await connection.fetchval("SELECT disabled FROM users WHERE id = $1", row.user_id)
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
    await _revoke_refresh(connection, "family_id = $2", family_id, now)
    await _record_revoked_grants(connection, "VALUES ($1, $2)", family_id, now)
    return RefreshRotation(outcome)


async def _revoke_refresh(connection: Connection, where: str, value: str, now: float) -> int:
    """Mark the matching unrevoked refresh tokens revoked at ``now``; how many changed."""
    status = await connection.execute(
        f"UPDATE refresh_tokens SET revoked_at = $1 WHERE {where} "  # noqa: S608
        "AND revoked_at IS NULL",
        now,
        value,
    )
    return _count(status)


async def _record_revoked_grants(connection: Connection, rows: str, key: str, now: float) -> None:
    """Insert (grant_id, revoked_at) rows given as VALUES or SELECT; a grant ends only once."""
    await connection.execute(
        f"INSERT INTO revoked_grants (grant_id, revoked_at) {rows} "
        "ON CONFLICT (grant_id) DO NOTHING",
        key,
        now,
    )
