"""Row conversions for the SQL store, the same in every dialect: list columns are JSON text."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from idp.store.base import (
    AuditEntry,
    AuthorizationCodeRecord,
    ClientRecord,
    KeyRecord,
    LoginCounter,
    RefreshTokenRecord,
    SessionRecord,
    UserRecord,
)
from idp.store.usernames import canonical_username

log = logging.getLogger("idp.store")

CLIENT_COLUMNS = (
    "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, "
    "scope, audiences, token_endpoint_auth_method, access_token_alg, id_token_alg, created_at, "
    "require_consent, backchannel_logout_uri"
)
SESSION_COLUMNS = (
    "id, sid, user_id, auth_time, created_at, last_seen_at, idle_expires_at, expires_at, ended_at"
)
CODE_COLUMNS = (
    "id, code_hash, client_id, redirect_uri, user_id, sid, scope, nonce, code_challenge, "
    "code_challenge_method, auth_time, created_at, expires_at, consumed_at"
)
USER_COLUMNS = "id, username, password_hash, email, name, disabled, created_at"
# What is written: the columns read, plus the canonical username the uniqueness is on.
USER_WRITE_COLUMNS = USER_COLUMNS + ", canonical_username"
# Every column but the key, in the order of client_values()[1:] / user_values()[1:].
CLIENT_UPDATE_COLUMNS = tuple(c.strip() for c in CLIENT_COLUMNS.split(","))[1:]
USER_UPDATE_COLUMNS = tuple(c.strip() for c in USER_WRITE_COLUMNS.split(","))[1:]


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
        client.require_consent,
        client.backchannel_logout_uri,
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
        require_consent=bool(row["require_consent"]),
        backchannel_logout_uri=row["backchannel_logout_uri"],
    )


def user_values(user: UserRecord) -> tuple[Any, ...]:
    """The values of USER_WRITE_COLUMNS."""
    return (
        user.id,
        user.username,
        user.password_hash,
        user.email,
        user.name,
        user.disabled,
        user.created_at,
        canonical_username(user.username),
    )


def username_keys(
    unkeyed: Sequence[tuple[str, str]], taken: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Canonical usernames for rows that have none yet, oldest first.

    ``unkeyed`` holds (id, username) pairs in creation order, ``taken`` the forms already
    held. Returns the (form, id) pairs to write and the (id, username) rows left without a
    form because an older account holds it.
    """
    assign: list[tuple[str, str]] = []
    clashes: list[tuple[str, str]] = []
    held = set(taken)
    for user_id, username in unkeyed:
        key = canonical_username(username)
        if key in held:
            clashes.append((user_id, username))
            continue
        held.add(key)
        assign.append((key, user_id))
    return assign, clashes


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


AUDIT_COLUMNS = "id, at, actor, action, target, outcome, detail, subject, count"
AUDIT_INSERT_COLUMNS = "at, actor, action, target, outcome, detail, subject"


def audit_values(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.at,
        entry.actor,
        entry.action,
        entry.target,
        entry.outcome,
        json.dumps(dict(entry.detail), sort_keys=True),
        entry.subject,
    )


def audit_from_row(row: Row) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        at=float(row["at"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        outcome=row["outcome"],
        detail=json.loads(row["detail"]),
        subject=row["subject"],
        count=int(row["count"]),
    )


def _optional_float(value: Any) -> float | None:
    return float(value) if value is not None else None


def session_values(session: SessionRecord) -> tuple[Any, ...]:
    return (
        session.id,
        session.sid,
        session.user_id,
        session.auth_time,
        session.created_at,
        session.last_seen_at,
        session.idle_expires_at,
        session.expires_at,
        session.ended_at,
    )


def session_from_row(row: Row) -> SessionRecord:
    return SessionRecord(
        id=bytes(row["id"]),
        sid=row["sid"],
        user_id=row["user_id"],
        auth_time=float(row["auth_time"]),
        created_at=float(row["created_at"]),
        last_seen_at=float(row["last_seen_at"]),
        idle_expires_at=float(row["idle_expires_at"]),
        expires_at=float(row["expires_at"]),
        ended_at=_optional_float(row["ended_at"]),
    )


def code_values(code: AuthorizationCodeRecord) -> tuple[Any, ...]:
    return (
        code.id,
        code.code_hash,
        code.client_id,
        code.redirect_uri,
        code.user_id,
        code.sid,
        _json(code.scope),
        code.nonce,
        code.code_challenge,
        code.code_challenge_method,
        code.auth_time,
        code.created_at,
        code.expires_at,
        code.consumed_at,
    )


def code_from_row(row: Row) -> AuthorizationCodeRecord:
    return AuthorizationCodeRecord(
        id=row["id"],
        code_hash=bytes(row["code_hash"]),
        client_id=row["client_id"],
        redirect_uri=row["redirect_uri"],
        user_id=row["user_id"],
        sid=row["sid"],
        scope=_list(row["scope"]),
        nonce=row["nonce"],
        code_challenge=row["code_challenge"],
        code_challenge_method=row["code_challenge_method"],
        auth_time=float(row["auth_time"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        consumed_at=_optional_float(row["consumed_at"]),
    )


def merged_scope(earlier: str | None, added: tuple[str, ...]) -> str:
    """The JSON scope list of a consent after adding scopes, earlier ones first."""
    return _json(tuple(dict.fromkeys([*scope_list(earlier), *added])))


def scope_list(text: str | None) -> tuple[str, ...]:
    return _list(text) if text else ()


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


def warn_username_clashes(clashes: Sequence[tuple[str, str]]) -> None:
    """Name the accounts that lost their username to an older one spelt the same way."""
    for user_id, username in clashes:
        log.warning(
            "user %s (%r): an older account has the same username up to case and Unicode "
            "form, so nobody can sign in to this one; delete it with: idp users delete %s",
            user_id,
            username,
            user_id,
        )


def login_counter_values(counter: LoginCounter) -> tuple[Any, ...]:
    """The values of LOGIN_COUNTER_COLUMNS."""
    return (
        counter.key,
        counter.failures,
        counter.window_started_at,
        counter.last_failure_at,
        counter.locked_until,
        counter.expires_at,
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
