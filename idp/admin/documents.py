"""What administrators see: the JSON documents both the CLI (``--json``) and the admin API give.

Member names follow RFC 7591 section 3.2.1 for clients; times are RFC 3339 UTC to the second.
Never a secret (except a new client's, once), a password hash or a private key part.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from idp.admin.consents import ConsentView
from idp.admin.keys import RingReport
from idp.admin.sessions import SessionView
from idp.keyring.lifecycle import Rotation, Transition, iso
from idp.sso.factors import FactorStatus
from idp.store.base import (
    AuditEntry,
    ClientRecord,
    InitialAccessTokenRecord,
    InitialAccessTokenSummary,
    KeyRecord,
    UserRecord,
)


def iso_time(timestamp: float | None) -> str | None:
    """An RFC 3339 UTC timestamp, to the second."""
    return None if timestamp is None else iso(timestamp)


def client_document(client: ClientRecord, secret: str | None = None) -> dict[str, Any]:
    """The client as administrators see it; ``secret`` only in the answer to creation."""
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
            "require_mfa": client.require_mfa,
            "require_par": client.require_par,
            "jwks": json.loads(client.jwks) if client.jwks else None,
            "jwks_uri": client.jwks_uri,
            "require_dpop": client.require_dpop,
            "token_exchange_subject_clients": list(client.token_exchange_subject_clients),
            "created_at": iso_time(client.created_at),
        }
    )
    return document


def rotated_secret_document(client: ClientRecord, secret: str) -> dict[str, Any]:
    """A client's new secret, shown this once, and until when the old one still works
    (null: it stopped at once)."""
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "previous_secret_expires_at": iso_time(client.previous_secret_expires_at),
    }


def initial_access_token_document(record: InitialAccessTokenRecord, token: str) -> dict[str, Any]:
    """A new initial access token for /register (RFC 7591 section 3), shown this once."""
    return {
        "id": record.id,
        "initial_access_token": token,
        "expires_at": iso_time(record.expires_at),
        "uses": record.uses_left,
    }


def initial_access_token_summary_document(summary: InitialAccessTokenSummary) -> dict[str, Any]:
    """An initial access token as administrators list it: never the token or its hash;
    ``uses_left`` null: any number until it expires."""
    return {
        "id": summary.id,
        "created_at": iso_time(summary.created_at),
        "expires_at": iso_time(summary.expires_at),
        "uses_left": summary.uses_left,
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


def mfa_document(user: UserRecord, status: FactorStatus) -> dict[str, Any]:
    """A user's second factors: TOTP state, unused recovery codes, whether one is required."""
    return {
        "id": user.id,
        "username": user.username,
        "totp": status.totp,
        "recovery_codes_left": status.recovery_codes_left,
        "mfa_required": status.required,
    }


def disabled_document(user: UserRecord, sessions_ended: int) -> dict[str, Any]:
    """A user just disabled, with how many of their sessions that ended."""
    return {**user_document(user), "disabled": True, "sessions_ended": sessions_ended}


def unlock_document(user: UserRecord, cleared: bool) -> dict[str, Any]:
    """An unlocked user; ``cleared`` is false when there were no failed logins to forget."""
    return {"id": user.id, "username": user.username, "unlocked": True, "cleared": cleared}


def consent_document(view: ConsentView) -> dict[str, Any]:
    """A consent: who granted which client what scope, and when (last added to)."""
    consent = view.consent
    return {
        "user_id": consent.user_id,
        "username": view.username,
        "client_id": consent.client_id,
        "client_name": view.client_name,
        "scope": " ".join(consent.scope),
        "granted_at": iso_time(consent.granted_at),
    }


def session_document(view: SessionView) -> dict[str, Any]:
    """A live browser session, named by its public ``sid`` (never its cookie or the cookie's
    hash), with how the user signed in and the clients that received tokens through it."""
    session = view.session
    return {
        "sid": session.sid,
        "user_id": session.user_id,
        "username": view.username,
        "auth_time": iso_time(session.auth_time),
        "created_at": iso_time(session.created_at),
        "last_seen_at": iso_time(session.last_seen_at),
        "idle_expires_at": iso_time(session.idle_expires_at),
        "expires_at": iso_time(session.expires_at),
        "amr": list(session.amr),
        "acr": session.acr,
        "clients": list(view.client_ids),
    }


def sessions_ended_document(user: UserRecord, ended: int) -> dict[str, Any]:
    """A user whose sessions were just ended, with how many ended."""
    return {"id": user.id, "username": user.username, "sessions_ended": ended}


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


def rotation_document(rotation: Rotation) -> dict[str, Any]:
    """A rotation's outcome as administrators see it: ``alg``, ``active_kid``, ``retired_kid``,
    ``next_kid`` and ``warning``."""
    return asdict(rotation)


def ring_document(report: RingReport) -> dict[str, Any]:
    """One algorithm's ring status: the next rotation and whether verifiers are safe."""
    status = report.status
    return {
        "alg": status.alg,
        "active_kid": status.active_kid,
        "next_kid": status.next_kid,
        "rotation_due_at": iso_time(status.rotation_due_at),
        "rotation_at": iso_time(status.rotation_at),
        "next_key_published_for_at_rotation": status.next_published_for_at_rotation,
        "verifiers_safe": status.verifiers_safe,
        "manual_rotation_safe_now": status.manual_rotation_safe_now,
        "retired_kids": list(report.retired_kids),
        "summary": report.summary,
    }


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
