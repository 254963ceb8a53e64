"""Device codes (RFC 8628): created at the device authorization endpoint, decided once on
the verification page, and polled at the token endpoint until redeemed once or expired.

A decision is one conditional UPDATE (only a pending, unexpired code changes); a poll reads
the row locked (PostgreSQL ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises every
transaction) and writes what the poll rule returns, so of concurrent polls of an approved
code exactly one redeems it.
"""

from __future__ import annotations

import json

from idp.store.base import DeviceApproval, DeviceCodePoll, DeviceCodeRecord, DeviceCodeStatus
from idp.store.codec import DEVICE_CODES
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase, insert


class DeviceCodes(SqlBase):
    """DeviceCodeStore."""

    async def create_device_code(self, device: DeviceCodeRecord) -> None:
        await self.dialect.run(lambda c: insert(c, DEVICE_CODES, device))

    async def find_device_code(self, user_code_hash: bytes, now: float) -> DeviceCodeRecord | None:
        found = await self._get(
            DEVICE_CODES,
            "user_code_hash = ? AND status = ? AND expires_at > ?",
            user_code_hash,
            DeviceCodeStatus.PENDING.value,
            now,
        )
        return found

    async def decide_device_code(self, device_id: str, approval: DeviceApproval) -> bool:
        status = DeviceCodeStatus.APPROVED if approval.approved else DeviceCodeStatus.DENIED
        changed = await self._execute(
            "UPDATE device_codes SET status = ?, user_id = ?, sid = ?, auth_time = ?, "
            "amr = ?, acr = ?, decided_at = ? "
            "WHERE id = ? AND status = ? AND expires_at > ?",
            status.value,
            approval.user_id,
            approval.sid,
            approval.auth_time,
            json.dumps(list(approval.amr)),  # as the codec writes a tuple[str, ...]
            approval.acr,
            approval.now,
            device_id,
            DeviceCodeStatus.PENDING.value,
            approval.now,
        )
        return bool(changed)

    async def poll_device_code(
        self, device_code_hash: bytes, poll: DeviceCodePoll
    ) -> tuple[DeviceCodeRecord, DeviceCodeRecord] | None:
        async def polled(
            connection: Connection,
        ) -> tuple[DeviceCodeRecord, DeviceCodeRecord] | None:
            row = await connection.fetchrow(
                f"{DEVICE_CODES.select} WHERE device_code_hash = ?{self.dialect.for_update}",
                device_code_hash,
            )
            if row is None:
                return None
            before = DEVICE_CODES.from_row(row)
            after = poll(before)
            if after != before:
                await connection.execute(DEVICE_CODES.update, *DEVICE_CODES.update_values(after))
            return before, after

        return await self.dialect.run(polled, transaction=True)

    async def delete_expired_device_codes(self, now: float, limit: int) -> int:
        return await self._collect("device_codes", "id", now, limit)
