"""Single-use values: pushed authorization requests (RFC 9126), kept until one use or
expiry, and client assertions (RFC 7523), refused after their first use.

A request is consumed by one DELETE ... RETURNING, and an assertion recorded by one
INSERT ... ON CONFLICT DO NOTHING, so of two replicas at once exactly one wins.
"""

from __future__ import annotations

from idp.store.base import PushedRequestRecord
from idp.store.codec import PUSHED_REQUESTS
from idp.store.sql.core import SqlBase, insert


class PushedRequests(SqlBase):
    """PushedRequestStore and ClientAssertionStore."""

    async def create_pushed_request(self, pushed: PushedRequestRecord) -> None:
        await self.dialect.run(lambda c: insert(c, PUSHED_REQUESTS, pushed))

    async def consume_pushed_request(
        self, request_uri_hash: bytes, now: float
    ) -> PushedRequestRecord | None:
        sql = (
            "DELETE FROM pushed_authorization_requests WHERE request_uri_hash = ? "  # noqa: S608
            f"RETURNING {PUSHED_REQUESTS.columns}"
        )
        row = await self.dialect.run(lambda c: c.fetchrow(sql, request_uri_hash))
        if row is None:
            return None
        pushed = PUSHED_REQUESTS.from_row(row)
        return pushed if now < pushed.expires_at else None

    async def delete_expired_pushed_requests(self, now: float, limit: int) -> int:
        return await self._collect("pushed_authorization_requests", "request_uri_hash", now, limit)

    async def use_client_assertion(self, jti_hash: bytes, expires_at: float) -> bool:
        sql = (
            "INSERT INTO client_assertions (jti_hash, expires_at) VALUES (?, ?) "
            "ON CONFLICT (jti_hash) DO NOTHING"
        )
        inserted = await self.dialect.run(lambda c: c.execute(sql, jti_hash, expires_at))
        return bool(inserted)

    async def delete_expired_client_assertions(self, now: float, limit: int) -> int:
        return await self._collect("client_assertions", "jti_hash", now, limit)
