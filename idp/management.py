"""Administrative operations on clients and users, shared by the CLI and the admin API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.oauth.registration import ClientRequest, build_client
from idp.passwords import hash_password_async
from idp.sessions import end_user_sessions
from idp.store.base import ClientRecord, KeyRecord, NotFound, Store, UserRecord

MAX_USERNAME_LENGTH = 200
MAX_PASSWORD_LENGTH = 1024


def iso_time(timestamp: float | None) -> str | None:
    """An RFC 3339 UTC timestamp, to the second."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InvalidUser(ValueError):
    """User input that cannot make a valid account."""


async def create_client(
    store: Store, request: ClientRequest, clock: Clock = system_clock
) -> tuple[ClientRecord, str | None]:
    """Register a client; the secret (confidential clients only) is returned once, never stored."""
    record, secret = build_client(request, clock())
    await store.create_client(record)
    return record, secret


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
) -> UserRecord:
    """Create a person's account with an argon2id password hash."""
    username = username.strip()
    if not username or len(username) > MAX_USERNAME_LENGTH or any(c.isspace() for c in username):
        raise InvalidUser("username must be 1 to 200 characters with no spaces")
    _check_password(password)
    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        raise InvalidUser(f"not an email address: {email!r}")
    user = UserRecord(
        id=secrets.token_urlsafe(12),
        username=username,
        password_hash=await hash_password_async(password),
        email=email,
        name=name,
        created_at=clock(),
    )
    await store.create_user(user)
    return user


def _check_password(password: str) -> None:
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser(f"password must be 1 to {MAX_PASSWORD_LENGTH} characters")


async def _user_named(store: Store, username: str) -> UserRecord:
    user = await store.get_user_by_username(username.strip())
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def set_password(store: Store, username: str, password: str) -> UserRecord:
    """Replace a user's password with a new argon2id hash."""
    _check_password(password)
    user = await _user_named(store, username)
    await store.set_user_password_hash(user.id, await hash_password_async(password))
    return user


async def disable_user(
    store: Store, settings: Settings, username: str, clock: Clock = system_clock
) -> tuple[UserRecord, int]:
    """Disable a user and end every session they have; the user and how many sessions ended.

    A disabled user cannot sign in, and their sessions and codes stop working at once.
    """
    user = await _user_named(store, username)
    await store.set_user_disabled(user.id, True)
    ended = await end_user_sessions(store, settings, clock, user.id)
    return user, len(ended)


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


def key_document(key: KeyRecord) -> dict[str, Any]:
    """A key as administrators see it; never the private part."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "created_at": iso_time(key.created_at),
        "activated_at": iso_time(key.activated_at),
        "retired_at": iso_time(key.retired_at),
        "revoked_at": iso_time(key.revoked_at),
    }
