"""Initial access tokens for dynamic client registration (RFC 7591 section 3).

A use is counted by one UPDATE ... RETURNING that only matches a live token with a use
left, so of two replicas spending a token's last use at once exactly one wins. Revoking a
token deletes its row, so a use racing the revocation either wins before it or finds nothing.
Administrators list tokens without their hashes.
"""

from __future__ import annotations

from idp.store.base import AuditEntry, InitialAccessTokenRecord, InitialAccessTokenSummary
from idp.store.codec import INITIAL_ACCESS_TOKEN_SUMMARIES, INITIAL_ACCESS_TOKENS
from idp.store.sql.core import SqlBase

_USABLE = "expires_at > ? AND (uses_left IS NULL OR uses_left > 0)"
_LIVE = f"token_hash = ? AND {_USABLE}"
_OLDEST_FIRST = "ORDER BY created_at, id"


class InitialAccessTokens(SqlBase):
    """InitialAccessTokenStore."""

    async def create_initial_access_token(
        self, token: InitialAccessTokenRecord, audit: AuditEntry | None = None
    ) -> None:
        await self._change_audited(
            INITIAL_ACCESS_TOKENS.insert, INITIAL_ACCESS_TOKENS.values(token), audit
        )

    async def get_initial_access_token(
        self, token_hash: bytes, now: float
    ) -> InitialAccessTokenRecord | None:
        return await self._get(INITIAL_ACCESS_TOKENS, _LIVE, token_hash, now)

    async def use_initial_access_token(
        self, token_hash: bytes, now: float
    ) -> InitialAccessTokenRecord | None:
        sql = (
            "UPDATE initial_access_tokens SET uses_left = uses_left - 1 "  # noqa: S608
            f"WHERE {_LIVE} RETURNING {INITIAL_ACCESS_TOKENS.columns}"
        )
        row = await self.dialect.run(lambda c: c.fetchrow(sql, token_hash, now))
        return INITIAL_ACCESS_TOKENS.from_row(row) if row is not None else None

    async def list_initial_access_tokens(
        self, live_at: float | None = None
    ) -> list[InitialAccessTokenSummary]:
        table = INITIAL_ACCESS_TOKEN_SUMMARIES
        if live_at is None:
            return await self._list(table, f"{table.select} {_OLDEST_FIRST}")
        return await self._list(table, f"{table.select} WHERE {_USABLE} {_OLDEST_FIRST}", live_at)

    async def delete_initial_access_token(
        self, token_id: str, audit: AuditEntry | None = None
    ) -> bool:
        return await self._change_audited(INITIAL_ACCESS_TOKENS.delete, [token_id], audit)

    async def delete_expired_initial_access_tokens(self, now: float, limit: int) -> int:
        return await self._collect("initial_access_tokens", "id", now, limit)
