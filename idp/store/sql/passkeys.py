"""Passkeys: WebAuthn user handles, credentials, and the challenges of ceremonies in progress.

A credential's signature counter only moves forward, in one conditional UPDATE (WebAuthn
Level 2 section 7.2 step 21), so two uses of one credential cannot both store the same
counter; a challenge is consumed by one DELETE ... RETURNING, so it verifies one ceremony.
"""

from __future__ import annotations

from idp.store.base import AuditEntry, PasskeyRecord, WebAuthnChallengeRecord
from idp.store.codec import CHALLENGES, PASSKEYS
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert


class Passkeys(SqlBase):
    """PasskeyStore."""

    async def get_webauthn_user_handle(self, user_id: str) -> bytes | None:
        sql = "SELECT user_handle FROM webauthn_users WHERE user_id = ?"
        handle = await self.dialect.run(lambda c: c.fetchval(sql, user_id))
        return bytes(handle) if handle is not None else None

    async def ensure_webauthn_user_handle(self, user_id: str, user_handle: bytes) -> bytes:
        async def ensure(connection: Connection) -> bytes:
            await connection.execute(
                "INSERT INTO webauthn_users (user_id, user_handle) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO NOTHING",
                user_id,
                user_handle,
            )
            stored = await connection.fetchval(
                "SELECT user_handle FROM webauthn_users WHERE user_id = ?", user_id
            )
            return bytes(stored)

        return await self.dialect.run(ensure, transaction=True)

    async def get_user_id_by_webauthn_handle(self, user_handle: bytes) -> str | None:
        sql = "SELECT user_id FROM webauthn_users WHERE user_handle = ?"
        user_id = await self.dialect.run(lambda c: c.fetchval(sql, user_handle))
        return str(user_id) if user_id is not None else None

    async def list_passkeys(self, user_id: str) -> list[PasskeyRecord]:
        sql = f"{PASSKEYS.select} WHERE user_id = ? ORDER BY created_at, credential_id"
        return await self._list(PASSKEYS, sql, user_id)

    async def get_passkey(self, credential_id: bytes) -> PasskeyRecord | None:
        return await self._get(PASSKEYS, "credential_id = ?", credential_id)

    async def add_passkey(self, passkey: PasskeyRecord, audit: AuditEntry | None = None) -> None:
        await self._change_audited(
            PASSKEYS.insert,
            PASSKEYS.values(passkey),
            audit,
            conflict="this passkey is already registered",
        )

    async def delete_passkey(
        self, user_id: str, credential_id: bytes, audit: AuditEntry | None = None
    ) -> bool:
        sql = "DELETE FROM webauthn_credentials WHERE credential_id = ? AND user_id = ?"
        return await self._change_audited(sql, (credential_id, user_id), audit)

    async def record_passkey_use(
        self, credential_id: bytes, sign_count: int, backed_up: bool, now: float
    ) -> bool:
        # WebAuthn 7.2 step 21: both zero means the authenticator keeps no counter; otherwise
        # the new one must exceed the stored one. The condition is checked by the row update
        # itself, so a concurrent use of the same counter value cannot pass as well.
        sql = (
            "UPDATE webauthn_credentials SET sign_count = ?, backed_up = ?, last_used_at = ? "
            "WHERE credential_id = ? AND ((sign_count = 0 AND ? = 0) OR sign_count < ?)"
        )
        changed = await self._execute(
            sql, sign_count, backed_up, now, credential_id, sign_count, sign_count
        )
        return changed > 0

    async def create_webauthn_challenge(self, challenge: WebAuthnChallengeRecord) -> None:
        await self.dialect.run(lambda c: insert(c, CHALLENGES, challenge))

    async def consume_webauthn_challenge(
        self, challenge_id: str, now: float
    ) -> WebAuthnChallengeRecord | None:
        sql = f"DELETE FROM webauthn_challenges WHERE id = ? RETURNING {CHALLENGES.columns}"  # noqa: S608
        row = await self.dialect.run(lambda c: c.fetchrow(sql, challenge_id))
        if row is None:
            return None
        challenge = CHALLENGES.from_row(row)
        return challenge if now < challenge.expires_at else None

    async def delete_expired_webauthn_challenges(self, now: float, limit: int) -> int:
        return await self._collect("webauthn_challenges", "id", now, limit)
