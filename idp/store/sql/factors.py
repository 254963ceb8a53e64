"""Second factors: TOTP credentials, recovery codes, and what a session has proved.

Using a code is one conditional UPDATE, so of concurrent uses of one recovery code or one
TOTP time step exactly one changes a row (and wins) on either database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from idp.store.base import AuditEntry, TotpCredential
from idp.store.codec import TOTP
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert, insert_audit


class Factors(SqlBase):
    """SecondFactorStore."""

    async def get_totp(self, user_id: str) -> TotpCredential | None:
        return await self._get(TOTP, "user_id = ?", user_id)

    async def put_pending_totp(self, credential: TotpCredential) -> bool:
        async def put(connection: Connection) -> bool:
            deleted = await connection.execute(
                "DELETE FROM totp_credentials WHERE user_id = ? AND state = 'pending'",
                credential.user_id,
            )
            if not deleted and await connection.fetchval(
                "SELECT 1 FROM totp_credentials WHERE user_id = ?", credential.user_id
            ):
                return False
            await insert(connection, TOTP, credential)
            return True

        return await self.dialect.run(put, transaction=True)

    async def activate_totp(
        self, user_id: str, step: int, now: float, code_hashes: Sequence[bytes], audit: AuditEntry
    ) -> bool:
        async def activate(connection: Connection) -> bool:
            changed = await connection.execute(
                "UPDATE totp_credentials SET state = 'active', activated_at = ?, last_step = ? "
                "WHERE user_id = ? AND state = 'pending'",
                now,
                step,
                user_id,
            )
            if not changed:
                return False
            await _replace_codes(connection, user_id, code_hashes, now)
            await insert_audit(connection, audit)
            return True

        return await self.dialect.run(activate, transaction=True)

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        changed = await self._execute(
            "UPDATE totp_credentials SET last_step = ? WHERE user_id = ? AND state = 'active' "
            "AND (last_step IS NULL OR last_step < ?)",
            step,
            user_id,
            step,
        )
        return changed > 0

    async def delete_second_factors(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        async def delete(connection: Connection) -> bool:
            count = await connection.execute(
                "DELETE FROM totp_credentials WHERE user_id = ?", user_id
            )
            count += await connection.execute(
                "DELETE FROM recovery_codes WHERE user_id = ?", user_id
            )
            if count:
                await insert_audit(connection, audit)
            return count > 0

        return await self.dialect.run(delete, transaction=True)

    async def replace_recovery_codes(
        self, user_id: str, code_hashes: Sequence[bytes], now: float, audit: AuditEntry
    ) -> None:
        async def replace(connection: Connection) -> None:
            await _replace_codes(connection, user_id, code_hashes, now)
            await insert_audit(connection, audit)

        await self.dialect.run(replace, transaction=True)

    async def use_recovery_code(self, user_id: str, code_hash: bytes, now: float) -> bool:
        changed = await self._execute(
            "UPDATE recovery_codes SET used_at = ? "
            "WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
            now,
            user_id,
            code_hash,
        )
        return changed > 0

    async def count_recovery_codes(self, user_id: str) -> int:
        count = await self.dialect.run(
            lambda c: c.fetchval(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
                user_id,
            )
        )
        return int(count or 0)

    async def reseal_totp_secrets(
        self, reseal: Callable[[TotpCredential], bytes | None], audit: AuditEntry | None = None
    ) -> int:
        async def change(connection: Connection) -> int:
            await self.dialect.lock(connection, "idp-totp-reseal")
            rows = await connection.fetch(
                f"{TOTP.select} ORDER BY user_id{self.dialect.for_update}"
            )
            changed = 0
            for credential in (TOTP.from_row(row) for row in rows):
                sealed = reseal(credential)
                if sealed is not None:
                    await connection.execute(
                        "UPDATE totp_credentials SET secret_sealed = ? WHERE user_id = ?",
                        sealed,
                        credential.user_id,
                    )
                    changed += 1
            if changed:
                await insert_audit(connection, audit)
            return changed

        return await self.dialect.run(change, transaction=True)

    async def record_authentication(
        self, session_id: bytes, amr: Sequence[str], acr: str, now: float, second_factor: bool
    ) -> bool:
        changed = await self._execute(
            "UPDATE sessions SET amr = ?, acr = ?, auth_time = ?, "
            "second_factor_at = CASE WHEN ? THEN ? ELSE second_factor_at END "
            "WHERE id = ? AND ended_at IS NULL",
            json.dumps(list(amr)),
            acr,
            now,
            second_factor,
            now,
            session_id,
        )
        return changed > 0


async def _replace_codes(
    connection: Connection, user_id: str, code_hashes: Sequence[bytes], now: float
) -> None:
    """Delete the user's recovery codes and insert ``code_hashes`` in their place."""
    await connection.execute("DELETE FROM recovery_codes WHERE user_id = ?", user_id)
    await connection.executemany(
        "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
        [(user_id, code_hash, now) for code_hash in code_hashes],
    )
