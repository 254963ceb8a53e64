"""Administrative operations on clients and users, shared by the CLI and the admin API."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from idp.clock import Clock, system_clock
from idp.keyring.lifecycle import LifecyclePolicy, Transition, next_transitions, ring_status
from idp.oauth.registration import ClientRequest, build_client
from idp.passwords import hash_password_async
from idp.store.base import SYSTEM, AuditEntry, ClientRecord, KeyRecord, NotFound, Store, UserRecord

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
    store: Store, request: ClientRequest, clock: Clock = system_clock, actor: str = SYSTEM
) -> tuple[ClientRecord, str | None]:
    """Register a client; the secret (confidential clients only) is returned once, never stored."""
    record, secret = build_client(request, clock())
    audit = AuditEntry(
        record.created_at, actor, "client.create", record.client_id, detail={"name": record.name}
    )
    await store.create_client(record, audit)
    return record, secret


async def delete_client(
    store: Store, client_id: str, clock: Clock = system_clock, actor: str = SYSTEM
) -> None:
    """Delete a client by id; raises NotFound when there is none."""
    audit = AuditEntry(clock(), actor, "client.delete", client_id)
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
) -> UserRecord:
    """Create a person's account with an argon2id password hash."""
    username = username.strip()
    if not username or len(username) > MAX_USERNAME_LENGTH or any(c.isspace() for c in username):
        raise InvalidUser("username must be 1 to 200 characters with no spaces")
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser(f"password must be 1 to {MAX_PASSWORD_LENGTH} characters")
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
    audit = AuditEntry(
        user.created_at, actor, "user.create", user.id, detail={"username": user.username}
    )
    await store.create_user(user, audit)
    return user


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
            last = max((k.retired_at or k.created_at) + policy.retention for k in retired)
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
    }
