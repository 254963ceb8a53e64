"""Browser sessions, authorization codes, refresh tokens and revocations: what grants are made of.

Codes are consumed by one conditional UPDATE; a refresh-token rotation, and every revocation
of a grant, runs as one transaction that locks the family's rows (on PostgreSQL under an
advisory lock per family first, see the dialect's ``refresh_family_lookup``). Ending a grant
records it in ``revoked_grants``, which the access tokens it issued are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

from idp.store import rotation
from idp.store.base import (
    AuditEntry,
    AuthorizationCodeRecord,
    CodeRedemption,
    RefreshRotation,
    RefreshRotationRequest,
    RefreshTokenRecord,
    RotationOutcome,
    SessionRecord,
)
from idp.store.codec import CODES, REFRESH_TOKENS, SESSIONS
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert, insert_audit


class Tokens(SqlBase):
    """SessionStore, CodeStore, RefreshTokenStore and RevocationStore, and ConsentStore's
    ``revoke_consent`` (which ends refresh-token families with the consent)."""

    # -- browser sessions -----------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None:
        await self.dialect.run(lambda c: insert(c, SESSIONS, session))

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        return await self._get(SESSIONS, "id = ?", session_id)

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        await self._execute(
            "UPDATE sessions SET last_seen_at = ?, "  # noqa: S608
            f"idle_expires_at = {self.dialect.least}(CAST(? AS double precision), expires_at) "
            "WHERE id = ? AND ended_at IS NULL",
            now,
            idle_expires_at,
            session_id,
        )

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        ended = await self._end_sessions("id", session_id, now)
        return ended[0] if ended else None

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._end_sessions("user_id", user_id, now)

    async def _end_sessions(self, column: str, value: object, now: float) -> list[SessionRecord]:
        sql = (
            f"UPDATE sessions SET ended_at = ? WHERE {column} = ? AND ended_at IS NULL "  # noqa: S608
            f"RETURNING {SESSIONS.columns}"
        )
        return await self._list(SESSIONS, sql, now, value)

    async def list_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        sql = (
            f"{SESSIONS.select} WHERE user_id = ? AND ended_at IS NULL "
            "AND idle_expires_at > ? AND expires_at > ? ORDER BY created_at DESC, sid"
        )
        return await self._list(SESSIONS, sql, user_id, now, now)

    async def get_session_by_sid(self, sid: str) -> SessionRecord | None:
        return await self._get(SESSIONS, "sid = ?", sid)

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        await self._execute(
            "INSERT INTO session_clients (session_id, client_id, first_used_at) "
            "VALUES (?, ?, ?) ON CONFLICT (session_id, client_id) DO NOTHING",
            session_id,
            client_id,
            now,
        )

    async def list_session_clients(self, session_id: bytes) -> list[str]:
        sql = (
            "SELECT client_id FROM session_clients WHERE session_id = ? "
            "ORDER BY first_used_at, client_id"
        )
        return [row[0] for row in await self.dialect.run(lambda c: c.fetch(sql, session_id))]

    async def delete_expired_sessions(self, now: float, limit: int) -> int:
        async def delete(connection: Connection) -> int:
            count = 0
            for column in ("expires_at", "idle_expires_at"):
                if count < limit:
                    count += await self._delete_expired(
                        connection, "sessions", "id", now, limit - count, column
                    )
            return count

        return await self.dialect.run(delete)

    # -- authorization codes --------------------------------------------------------------

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None:
        await self.dialect.run(lambda c: insert(c, CODES, code))

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        async def consume(connection: Connection) -> CodeRedemption | None:
            # A single conditional UPDATE: the first caller flips consumed_at (PostgreSQL's
            # row lock queues the others, SQLite has one writer), every later one finds it set.
            row = await connection.fetchrow(
                "UPDATE authorization_codes SET consumed_at = ? "  # noqa: S608
                f"WHERE code_hash = ? AND consumed_at IS NULL RETURNING {CODES.columns}",
                now,
                code_hash,
            )
            if row is not None:
                return CodeRedemption(CODES.from_row(row), already_consumed=False)
            row = await connection.fetchrow(f"{CODES.select} WHERE code_hash = ?", code_hash)
            return CodeRedemption(CODES.from_row(row), True) if row else None

        return await self.dialect.run(consume)

    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int:
        return await self._collect("authorization_codes", "id", now, limit)

    # -- refresh tokens -------------------------------------------------------------------

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None:
        await self.dialect.run(lambda c: insert(c, REFRESH_TOKENS, token))

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        return await self._get(REFRESH_TOKENS, "token_hash = ?", token_hash)

    async def rotate_refresh_token(self, request: RefreshRotationRequest) -> RefreshRotation:
        token_hash, client_id, now = request.token_hash, request.client_id, request.now

        async def rotate(connection: Connection) -> RefreshRotation:
            family_id = await connection.fetchval(self.dialect.refresh_family_lookup, token_hash)
            if family_id is None:
                return RefreshRotation(RotationOutcome.UNKNOWN)
            consumed = await connection.fetchrow(
                "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? "  # noqa: S608
                "AND client_id = ? AND rotated_at IS NULL AND revoked_at IS NULL "
                "AND expires_at > ? AND NOT EXISTS (SELECT 1 FROM users "
                "WHERE users.id = refresh_tokens.user_id AND users.disabled) "
                f"RETURNING {REFRESH_TOKENS.columns}",
                now,
                token_hash,
                client_id,
                now,
            )
            if consumed is None:
                return await self._judge_rotated(connection, family_id, request)
            token = rotation.successor_of(REFRESH_TOKENS.from_row(consumed), request.successor, now)
            await insert(connection, REFRESH_TOKENS, token)
            return RefreshRotation(RotationOutcome.ROTATED, token)

        return await self.dialect.run(rotate, transaction=True)

    async def _judge_rotated(
        self, connection: Connection, family_id: str, request: RefreshRotationRequest
    ) -> RefreshRotation:
        """Why a token was not consumed, and the reuse rule for a rotated one.

        The caller serialises the family's rotations; every row of the family is locked
        as well (where rows lock) before the newest generation is read.
        """
        rows = await connection.fetch(
            f"{REFRESH_TOKENS.select} WHERE family_id = ? ORDER BY id{self.dialect.for_update}",
            family_id,
        )
        family = [REFRESH_TOKENS.from_row(row) for row in rows]
        now = request.now
        row = next((token for token in family if token.token_hash == request.token_hash), None)
        disabled = row is not None and await connection.fetchval(
            "SELECT 1 FROM users WHERE id = ? AND disabled", row.user_id
        )
        why = rotation.refusal(
            row, client_id=request.client_id, now=now, user_disabled=bool(disabled)
        )
        if why is not None or row is None:
            return RefreshRotation(why or RotationOutcome.UNKNOWN)
        newest = max(token.generation for token in family)
        outcome = rotation.reuse_outcome(
            row, now=now, reuse_grace=request.reuse_grace, newest_generation=newest
        )
        if outcome is RotationOutcome.GRACE_SIBLING:
            sibling = rotation.successor_of(row, request.successor, now)
            await insert(connection, REFRESH_TOKENS, sibling)
            return RefreshRotation(outcome, sibling)
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

    async def revoke_consent(
        self, user_id: str, client_id: str, now: float, audit: AuditEntry | None = None
    ) -> bool:
        async def revoke(connection: Connection) -> bool:
            # Refresh rows first, as a rotation locks them (see _revoke_grant).
            await connection.execute(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND client_id = ? "
                "AND revoked_at IS NULL",
                now,
                user_id,
                client_id,
            )
            await _record_revoked_grants(
                connection,
                "SELECT DISTINCT family_id, CAST(? AS double precision) FROM refresh_tokens "
                "WHERE user_id = ? AND client_id = ?",
                now,
                user_id,
                client_id,
            )
            deleted = await connection.execute(
                "DELETE FROM consents WHERE user_id = ? AND client_id = ?", user_id, client_id
            )
            if deleted:
                await insert_audit(connection, audit)
            return bool(deleted)

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
                "INSERT INTO revoked_grants (grant_id, revoked_at) VALUES (?, ?) "
                "ON CONFLICT (grant_id) DO UPDATE SET revoked_at = excluded.revoked_at "
                "WHERE revoked_grants.revoked_at < excluded.revoked_at",
                _user_grant(user_id),
                now,
            )
            return count

        return await self.dialect.run(revoke, transaction=True)

    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int:
        return await self._collect("refresh_tokens", "id", now, limit)

    # -- revoked access tokens and grants -------------------------------------------------

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        count = await self._execute(
            "INSERT INTO revoked_access_tokens (jti, client_id, revoked_at, expires_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
            jti,
            client_id,
            now,
            expires_at,
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
            params.extend((_user_grant(user_id), issued_at))
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


def _user_grant(user_id: str) -> str:
    """The revoked-grant id under which ending a user's access is recorded."""
    return f"user:{user_id}"


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
