"""Row conversions shared by both backends: list columns are stored as JSON text."""

from __future__ import annotations

import json
from typing import Any, Protocol

from idp.store.base import ClientRecord, KeyRecord, LoginCounter, RefreshTokenRecord, UserRecord

CLIENT_COLUMNS = (
    "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, "
    "scope, audiences, token_endpoint_auth_method, access_token_alg, id_token_alg, created_at"
)
USER_COLUMNS = "id, username, password_hash, email, name, disabled, created_at"


class Row(Protocol):
    """A database row readable by column name (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: str) -> Any: ...


KEY_COLUMNS = (
    "kid, alg, state, public_jwk, private_key_sealed, created_at, activated_at, retired_at, "
    "revoked_at"
)


def _list(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _json(values: tuple[str, ...]) -> str:
    return json.dumps(list(values))


def client_values(client: ClientRecord) -> tuple[Any, ...]:
    return (
        client.client_id,
        client.name,
        client.secret_hash,
        _json(client.redirect_uris),
        _json(client.post_logout_redirect_uris),
        _json(client.grant_types),
        _json(client.scope),
        _json(client.audiences),
        client.token_endpoint_auth_method,
        client.access_token_alg,
        client.id_token_alg,
        client.created_at,
    )


def client_from_row(row: Row) -> ClientRecord:
    secret = row["secret_hash"]
    return ClientRecord(
        client_id=row["client_id"],
        name=row["name"],
        secret_hash=bytes(secret) if secret is not None else None,
        redirect_uris=_list(row["redirect_uris"]),
        post_logout_redirect_uris=_list(row["post_logout_redirect_uris"]),
        grant_types=_list(row["grant_types"]),
        scope=_list(row["scope"]),
        audiences=_list(row["audiences"]),
        token_endpoint_auth_method=row["token_endpoint_auth_method"],
        access_token_alg=row["access_token_alg"],
        id_token_alg=row["id_token_alg"],
        created_at=float(row["created_at"]),
    )


def user_values(user: UserRecord) -> tuple[Any, ...]:
    return (
        user.id,
        user.username,
        user.password_hash,
        user.email,
        user.name,
        user.disabled,
        user.created_at,
    )


def user_from_row(row: Row) -> UserRecord:
    return UserRecord(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        email=row["email"],
        name=row["name"],
        disabled=bool(row["disabled"]),
        created_at=float(row["created_at"]),
    )


def key_values(key: KeyRecord) -> tuple[Any, ...]:
    return (
        key.kid,
        key.alg,
        key.state,
        key.public_jwk,
        key.private_key_sealed,
        key.created_at,
        key.activated_at,
        key.retired_at,
        key.revoked_at,
    )


def key_from_row(row: Row) -> KeyRecord:
    sealed = row["private_key_sealed"]
    return KeyRecord(
        kid=row["kid"],
        alg=row["alg"],
        state=row["state"],
        public_jwk=row["public_jwk"],
        private_key_sealed=bytes(sealed) if sealed is not None else None,
        created_at=float(row["created_at"]),
        activated_at=row["activated_at"],
        retired_at=row["retired_at"],
        revoked_at=row["revoked_at"],
    )


def ordered_updates(updates: tuple[KeyRecord, ...]) -> list[KeyRecord]:
    """Demotions before promotions, so the one-active-key-per-alg index holds at every step."""
    return sorted(updates, key=lambda key: key.state == "active")


REFRESH_COLUMNS = (
    "id, token_hash, family_id, parent_id, generation, client_id, user_id, sid, scope, "
    "auth_time, offline, created_at, expires_at, rotated_at, revoked_at"
)
LOGIN_COUNTER_COLUMNS = (
    "key, failures, window_started_at, last_failure_at, locked_until, expires_at"
)


def refresh_values(token: RefreshTokenRecord) -> tuple[Any, ...]:
    return (
        token.id,
        token.token_hash,
        token.family_id,
        token.parent_id,
        token.generation,
        token.client_id,
        token.user_id,
        token.sid,
        _json(token.scope),
        token.auth_time,
        token.offline,
        token.created_at,
        token.expires_at,
        token.rotated_at,
        token.revoked_at,
    )


def refresh_from_row(row: Row) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        id=row["id"],
        token_hash=bytes(row["token_hash"]),
        family_id=row["family_id"],
        parent_id=row["parent_id"],
        generation=int(row["generation"]),
        client_id=row["client_id"],
        user_id=row["user_id"],
        sid=row["sid"],
        scope=_list(row["scope"]),
        auth_time=float(row["auth_time"]),
        offline=bool(row["offline"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
    )


def login_counter_from_row(row: Row) -> LoginCounter:
    return LoginCounter(
        key=row["key"],
        failures=int(row["failures"]),
        window_started_at=float(row["window_started_at"]),
        last_failure_at=float(row["last_failure_at"]),
        locked_until=row["locked_until"],
        expires_at=float(row["expires_at"]),
    )
