"""Clients, users and the consents between them.

Admin changes carry their audit row, written in the change's transaction; a name or a
canonical username already taken is Conflict. A server process holds the clients it
authenticates in memory (``cache_clients``, see ``idp.store.client_cache``); a client change
made through this store object is seen by its lookups before the change method returns.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

from idp.store.base import AuditEntry, ClientRecord, ConsentRecord, UserRecord
from idp.store.client_cache import ClientCache, follow_clients
from idp.store.codec import CLIENTS, CONSENTS, USERS
from idp.store.dialects import Connection
from idp.store.sql.core import SqlBase
from idp.store.usernames import canonical_username


class Accounts(SqlBase):
    """ClientStore, UserStore and ConsentStore."""

    client_cache: ClientCache | None = None

    async def get_client(self, client_id: str) -> ClientRecord | None:
        # Hot where no cache runs: every token request looks its client up.
        return await self._get(CLIENTS, "client_id = ?", client_id, hot=True)

    async def get_client_cached(self, client_id: str) -> ClientRecord | None:
        cache = self.client_cache
        if cache is None:
            return await self.get_client(client_id)
        return await cache.get(client_id)

    async def clients_version(self) -> int:
        version = await self.dialect.run(
            lambda c: c.fetchval("SELECT version FROM clients_version WHERE id = 1"), hot=True
        )
        return int(version)

    async def watch_clients(self, on_change: Callable[[], None]) -> None:
        await self.dialect.watch_clients(on_change)

    async def cache_clients(self) -> None:
        self.client_cache = ClientCache(self.get_client)
        try:
            await follow_clients(self.client_cache, self)
        finally:
            self.client_cache = None

    async def list_clients(self) -> list[ClientRecord]:
        return await self._list(CLIENTS, f"{CLIENTS.select} ORDER BY created_at, name")

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._get(USERS, "id = ?", user_id)

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        return await self._get(USERS, "canonical_username = ?", canonical_username(username))

    async def list_users(self) -> list[UserRecord]:
        return await self._list(USERS, f"{USERS.select} ORDER BY created_at, username")

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        conflict = _taken("client", client.name)
        with self._changing_clients():
            await self._change_audited(
                CLIENTS.insert, CLIENTS.values(client), audit, conflict=conflict
            )

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        conflict = _taken("user", user.username)
        await self._change_audited(USERS.insert, USERS.values(user), audit, conflict=conflict)

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        values = CLIENTS.update_values(client)
        with self._changing_clients():
            return await self._change_audited(
                CLIENTS.update, values, audit, conflict=_taken("client", client.name)
            )

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        values = USERS.update_values(user)
        return await self._change_audited(
            USERS.update, values, audit, conflict=_taken("user", user.username)
        )

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        with self._changing_clients():
            return await self._change_audited(CLIENTS.delete, (client_id,), audit)

    @contextlib.contextmanager
    def _changing_clients(self) -> Iterator[None]:
        """Around a change to the clients table (whose triggers move its counter): forget
        the clients this process holds, even when the outcome is unknown (it may have
        committed), before the change method returns."""
        try:
            yield
        finally:
            if self.client_cache is not None:
                self.client_cache.invalidate()

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        return await self._change_audited(USERS.delete, (user_id,), audit)

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        sql = "UPDATE users SET password_hash = ? WHERE id = ?"
        return await self._execute(sql, password_hash, user_id) > 0

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        text = await self.dialect.run(lambda c: _consented(c, user_id, client_id))
        return tuple(json.loads(text)) if text else ()

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
            earlier = await _consented(connection, user_id, client_id, self.dialect.for_update)
            merged = list(dict.fromkeys([*json.loads(earlier or "[]"), *scope]))
            await connection.execute(
                "UPDATE consents SET scope = ?, granted_at = ? WHERE user_id = ? AND client_id = ?",
                json.dumps(merged),
                now,
                user_id,
                client_id,
            )

        await self.dialect.run(save, transaction=True)

    async def list_consents(self, user_id: str) -> list[ConsentRecord]:
        sql = f"{CONSENTS.select} WHERE user_id = ? ORDER BY granted_at, client_id"
        return await self._list(CONSENTS, sql, user_id)

    async def find_consents(
        self, user_id: str | None = None, client_id: str | None = None
    ) -> list[ConsentRecord]:
        given = (("user_id", user_id), ("client_id", client_id))
        chosen = [(column, value) for column, value in given if value is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in chosen) or "1 = 1"
        sql = f"{CONSENTS.select} WHERE {where} ORDER BY granted_at, user_id, client_id"
        return await self._list(CONSENTS, sql, *(value for _, value in chosen))


async def _consented(
    connection: Connection, user_id: str, client_id: str, lock: str = ""
) -> str | None:
    """The JSON scope list of the user's consent to the client (None when there is none)."""
    sql = "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?" + lock  # noqa: S608
    scope: str | None = await connection.fetchval(sql, user_id, client_id)
    return scope


def _taken(kind: str, name: str) -> str:
    return f"a {kind} named {name!r} already exists"
