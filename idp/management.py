"""Administrative operations on clients and users, shared by the CLI and the admin API."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from idp.clock import Clock, system_clock
from idp.config import DEFAULT_PASSWORD_MIN_LENGTH, MAX_PASSWORD_LENGTH
from idp.keyring.lifecycle import (
    LifecyclePolicy,
    Rotation,
    Transition,
    expires_at,
    iso,
    next_transitions,
)
from idp.keyring.status import ring_status
from idp.oauth.refresh_tokens import revoke_user_refresh_tokens
from idp.oauth.registration import ClientRequest, ClientUpdate, apply_client_update, build_client
from idp.oauth.uris import STRICT_BACKCHANNEL, BackchannelRules
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.passwords import HashPassword, hash_password_async
from idp.sso.sessions import end_user_sessions
from idp.store.base import SYSTEM, AuditEntry, ClientRecord, KeyRecord, NotFound, Store, UserRecord
from idp.store.usernames import USERNAME_RULE, username_allowed

MAX_USERNAME_LENGTH = 200


def iso_time(timestamp: float | None) -> str | None:
    """An RFC 3339 UTC timestamp, to the second."""
    return None if timestamp is None else iso(timestamp)


class InvalidUser(ValueError):
    """User input that cannot make a valid account."""


async def create_client(
    store: Store,
    request: ClientRequest,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    backchannel: BackchannelRules = STRICT_BACKCHANNEL,
    subject: str | None = None,
) -> tuple[ClientRecord, str | None]:
    """Register a client; the secret (confidential clients only) is returned once, never stored.

    ``backchannel`` (from :func:`idp.oauth.uris.backchannel_rules`) bounds its logout URI;
    ``subject`` (here and below) is the admin token's ``sub``, recorded in the audit row.
    """
    record, secret = build_client(request, clock(), backchannel)
    audit = AuditEntry(
        record.created_at,
        actor,
        "client.create",
        record.client_id,
        detail={"name": record.name},
        subject=subject,
    )
    await store.create_client(record, audit)
    return record, secret


async def get_client(store: Store, client_id: str) -> ClientRecord:
    """The client with this id; raises NotFound when there is none."""
    client = await store.get_client(client_id)
    if client is None:
        raise NotFound(f"no client with client_id {client_id!r}")
    return client


_CLIENT_UPDATE_FIELDS = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "audiences",
    "backchannel_logout_uri",
)


async def update_client(
    store: Store,
    client_id: str,
    update: ClientUpdate,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    backchannel: BackchannelRules = STRICT_BACKCHANNEL,
    subject: str | None = None,
) -> ClientRecord:
    """Change a client's metadata with the registration rules; raises NotFound or Conflict.

    The audit row (action ``client.update``) names the fields whose value changed.
    """
    current = await get_client(store, client_id)
    updated = apply_client_update(current, update, backchannel)
    changed = [f for f in _CLIENT_UPDATE_FIELDS if getattr(current, f) != getattr(updated, f)]
    audit = AuditEntry(
        clock(), actor, "client.update", client_id, detail={"fields": changed}, subject=subject
    )
    if not await store.update_client(updated, audit):
        raise NotFound(f"no client with client_id {client_id!r}")
    return updated


async def delete_client(
    store: Store,
    client_id: str,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> None:
    """Delete a client by id; raises NotFound when there is none."""
    audit = AuditEntry(clock(), actor, "client.delete", client_id, subject=subject)
    if not await store.delete_client(client_id, audit):
        raise NotFound(f"no client with client_id {client_id!r}")


def client_document(client: ClientRecord, secret: str | None = None) -> dict[str, Any]:
    """The client as administrators see it (RFC 7591 section 3.2.1 member names)."""
    document: dict[str, Any] = {"client_id": client.client_id}
    if secret is not None:
        document["client_secret"] = secret
    document.update(
        {
            "name": client.name,
            "redirect_uris": list(client.redirect_uris),
            "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
            "grant_types": list(client.grant_types),
            "scope": " ".join(client.scope),
            "audiences": list(client.audiences),
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "access_token_alg": client.access_token_alg,
            "id_token_alg": client.id_token_alg,
            "require_consent": client.require_consent,
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "created_at": iso_time(client.created_at),
        }
    )
    return document


async def create_user(
    store: Store,
    username: str,
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    hasher: HashPassword = hash_password_async,
    subject: str | None = None,
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH,
) -> UserRecord:
    """Create a person's account with an argon2id password hash.

    A server passes its PasswordService's ``hash``, so hashing shares the logins' bound.
    The name must be visible throughout (see :mod:`idp.store.usernames`); the store refuses one
    whose canonical form another account has (Conflict).
    """
    username = username.strip()
    if not username_allowed(username):
        raise InvalidUser(USERNAME_RULE)
    check_password_length(password, password_min_length)
    _check_email(email)
    _check_name(name)
    user = UserRecord(
        id=secrets.token_urlsafe(12),
        username=username,
        password_hash=await hasher(password),
        email=email,
        name=name,
        created_at=clock(),
    )
    audit = AuditEntry(
        user.created_at,
        actor,
        "user.create",
        user.id,
        detail={"username": user.username},
        subject=subject,
    )
    await store.create_user(user, audit)
    return user


def check_password_length(password: str, min_length: int) -> None:
    """Refuse a new password shorter than ``min_length`` (NIST SP 800-63B section 3.1.1.2).

    Lengths count Unicode code points, as that section asks; the upper bound only keeps
    hashing cheap to refuse.
    """
    if len(password) < min_length:
        raise InvalidUser(f"password too short: at least {min_length} characters are required")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")


def _check_email(email: str | None) -> None:
    if email is not None and (
        "@" not in email or any(c.isspace() for c in email) or len(email) > MAX_USERNAME_LENGTH
    ):
        raise InvalidUser(f"not an email address: {email!r}")


def _check_name(name: str | None) -> None:
    if name is not None and len(name) > MAX_USERNAME_LENGTH:
        raise InvalidUser(f"name must be at most {MAX_USERNAME_LENGTH} characters")


async def get_user(store: Store, user_id: str) -> UserRecord:
    """The user with this id; raises NotFound when there is none."""
    user = await store.get_user(user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return user


class _Unchanged:
    """Marks a user field the update leaves as it is (None means: clear it)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class UserUpdate:
    """What an administrator may change on an account; UNCHANGED fields stay as they are."""

    email: str | None = UNCHANGED
    name: str | None = UNCHANGED
    disabled: bool = UNCHANGED
    password: str = UNCHANGED


async def update_user(
    store: Store,
    user_id: str,
    update: UserUpdate,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    hasher: HashPassword = hash_password_async,
    notifier: BackchannelNotifier | None = None,
    subject: str | None = None,
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH,
) -> UserRecord:
    """Change an account (a new password is hashed with argon2id); raises NotFound.

    The audit row (action ``user.update``) names the changed fields, never their values.
    Disabling the account also ends the user's access (``end_user_access``).
    """
    updated = await _apply_user_update(
        store,
        await get_user(store, user_id),
        update,
        clock,
        actor,
        hasher,
        subject,
        password_min_length,
    )
    if update.disabled is True:
        await end_user_access(store, user_id, clock, notifier)
    return updated


async def _apply_user_update(
    store: Store,
    current: UserRecord,
    update: UserUpdate,
    clock: Clock,
    actor: str,
    hasher: HashPassword = hash_password_async,
    subject: str | None = None,
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH,
) -> UserRecord:
    """Validate and store an update of ``current``, audited in the same transaction."""
    user_id = current.id
    updated = current
    changed: list[str] = []
    if update.email is not UNCHANGED:
        _check_email(update.email)
        updated = replace(updated, email=update.email)
    if update.name is not UNCHANGED:
        _check_name(update.name)
        updated = replace(updated, name=update.name)
    if update.disabled is not UNCHANGED:
        updated = replace(updated, disabled=bool(update.disabled))
    changed = [
        f for f in ("email", "name", "disabled") if getattr(current, f) != getattr(updated, f)
    ]
    if update.password is not UNCHANGED:
        check_password_length(update.password, password_min_length)
        updated = replace(updated, password_hash=await hasher(update.password))
        changed.append("password")
    audit = AuditEntry(
        clock(), actor, "user.update", user_id, detail={"fields": changed}, subject=subject
    )
    if not await store.update_user(updated, audit):
        raise NotFound(f"no user with id {user_id!r}")
    return updated


async def delete_user(
    store: Store,
    user_id: str,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    subject: str | None = None,
) -> None:
    """Delete a user by id; raises NotFound when there is none."""
    audit = AuditEntry(clock(), actor, "user.delete", user_id, subject=subject)
    if not await store.delete_user(user_id, audit):
        raise NotFound(f"no user with id {user_id!r}")


async def _user_named(store: Store, username: str) -> UserRecord:
    user = await store.get_user_by_username(username.strip())
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def set_password(
    store: Store,
    username: str,
    password: str,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH,
) -> UserRecord:
    """Replace a user's password with a new argon2id hash (audited as ``user.update``)."""
    user = await _user_named(store, username)
    update = UserUpdate(password=password)
    return await _apply_user_update(
        store, user, update, clock, actor, password_min_length=password_min_length
    )


async def disable_user(
    store: Store,
    username: str,
    clock: Clock = system_clock,
    actor: str = SYSTEM,
    notifier: BackchannelNotifier | None = None,
) -> tuple[UserRecord, int]:
    """Disable a user and end every session they have; the user and how many sessions ended.

    A disabled user cannot sign in, and their sessions, codes and refresh tokens stop
    working at once.
    """
    user = await _user_named(store, username)
    updated = await _apply_user_update(store, user, UserUpdate(disabled=True), clock, actor)
    return updated, await end_user_access(store, user.id, clock, notifier)


async def end_user_access(
    store: Store,
    user_id: str,
    clock: Clock = system_clock,
    notifier: BackchannelNotifier | None = None,
) -> int:
    """End a user's sessions (telling back-channel clients) and revoke all their refresh
    tokens, offline ones included; how many sessions ended.

    For an account that is disabled or about to be deleted.
    """
    ended = await end_user_sessions(store, clock, user_id, notifier)
    await revoke_user_refresh_tokens(store, user_id, clock=clock)
    return len(ended)


def rotation_document(rotation: Rotation) -> dict[str, Any]:
    """A rotation's outcome as administrators see it (CLI ``--json`` and the admin API)."""
    return {
        "alg": rotation.alg,
        "active_kid": rotation.active_kid,
        "retired_kid": rotation.retired_kid,
        "next_kid": rotation.next_kid,
        "warning": rotation.warning,
    }


def user_document(user: UserRecord) -> dict[str, Any]:
    """The user as administrators see it; never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "disabled": user.disabled,
        "created_at": iso_time(user.created_at),
    }


def key_document(key: KeyRecord, transition: Transition | None = None) -> dict[str, Any]:
    """A key as administrators see it, with its next scheduled transition; never the private part.

    ``next_transition`` is ``activate`` (a next key), ``retire`` (the active key), ``expire``
    (a retired key) or null (revoked, expired, or a next key waiting behind another).
    """
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "created_at": iso_time(key.created_at),
        "activated_at": iso_time(key.activated_at),
        "retired_at": iso_time(key.retired_at),
        "revoked_at": iso_time(key.revoked_at),
        "next_transition": transition.name if transition else None,
        "next_transition_at": iso_time(transition.at) if transition else None,
    }


def key_documents(keys: Sequence[KeyRecord], policy: LifecyclePolicy) -> list[dict[str, Any]]:
    """Every key as administrators see it, each with the time of its next transition."""
    transitions = next_transitions(keys, policy)
    return [key_document(key, transitions.get(key.kid)) for key in keys]


def ring_status_documents(
    keys: Sequence[KeyRecord], algs: Sequence[str], policy: LifecyclePolicy, now: float
) -> list[dict[str, Any]]:
    """Per algorithm: the next rotation, whether any verifier could be caught out, in words."""
    documents = []
    for alg in algs:
        status = ring_status(keys, alg, policy, now)
        retired = [k for k in keys if k.alg == alg and k.state == "retired"]
        summary = status.summary
        if retired:
            last = max(expires_at(keys, k, policy) for k in retired)
            summary += (
                f" {len(retired)} retired key(s) stay published for tokens they signed; "
                f"the last leaves JWKS at {iso_time(last)}."
            )
        documents.append(
            {
                "alg": alg,
                "active_kid": status.active_kid,
                "next_kid": status.next_kid,
                "rotation_due_at": iso_time(status.rotation_due_at),
                "rotation_at": iso_time(status.rotation_at),
                "next_key_published_for_at_rotation": status.next_published_for_at_rotation,
                "verifiers_safe": status.verifiers_safe,
                "manual_rotation_safe_now": status.manual_rotation_safe_now,
                "retired_kids": [k.kid for k in retired],
                "summary": summary,
            }
        )
    return documents


def audit_document(entry: AuditEntry) -> dict[str, Any]:
    """An audit row as administrators see it."""
    return {
        "id": entry.id,
        "at": iso_time(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "detail": dict(entry.detail),
        "subject": entry.subject,
        "count": entry.count,
    }
