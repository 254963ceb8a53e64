"""Refresh tokens: opaque, stored only as a hash, rotated on every use (RFC 6749 section 6).

Every grant starts a family (the authorization code grant passes its code's row id as the
``family_id``); each use of the live token consumes it and issues its successor, with the
same scope ceiling, client, user and session. Reuse of a rotated token revokes the family
(RFC 9700 sections 2.2.2 and 4.14.2), with a short grace for two tabs refreshing at once:
see :mod:`idp.store.rotation` for the exact rule.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.store.base import (
    NewRefreshToken,
    RefreshRotationRequest,
    RefreshTokenRecord,
    RefreshTokenStore,
    RotationOutcome,
)


class RefreshTokenRefused(Exception):
    """The presented refresh token cannot be used; ``outcome`` says why (for logs, not clients)."""

    def __init__(self, outcome: RotationOutcome) -> None:
        super().__init__(f"refresh token refused: {outcome.value}")
        self.outcome = outcome


@dataclass(frozen=True)
class RedeemedRefreshToken:
    """A successful rotation: the new raw token (give it to the client once) and its row."""

    token: str
    record: RefreshTokenRecord


def new_refresh_token() -> str:
    """An opaque refresh token: 256 random bits, base64url without padding."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """The SHA-256 kept in the store; the token itself has full entropy, so no KDF is needed."""
    return hashlib.sha256(token.encode()).digest()


def _new_row(settings: Settings, now: float) -> tuple[str, NewRefreshToken]:
    token = new_refresh_token()
    return token, NewRefreshToken(
        id=secrets.token_urlsafe(16),
        token_hash=hash_refresh_token(token),
        expires_at=now + settings.refresh_token_ttl,
    )


async def issue_refresh_token(
    store: RefreshTokenStore,
    settings: Settings,
    clock: Clock,
    *,
    client_id: str,
    user_id: str,
    scope: Sequence[str],
    sid: str | None,
    auth_time: float,
    offline: bool,
    family_id: str,
    dpop_jkt: str | None = None,
    resources: Sequence[str] = (),
) -> str:
    """Store the first token of a new family and return the raw token (shown to the client once).

    It lives IDP_REFRESH_TOKEN_TTL; ``scope`` is the ceiling every later refresh may narrow.
    ``offline`` tokens (offline_access) outlive the session ``sid``; others die with it.
    With ``dpop_jkt`` the whole family is bound to that DPoP key (RFC 9449 section 5);
    ``resources`` are the grant's resource indicators (RFC 8707), kept by every refresh.
    """
    now = clock()
    token, new = _new_row(settings, now)
    await store.create_refresh_token(
        RefreshTokenRecord(
            id=new.id,
            token_hash=new.token_hash,
            family_id=family_id,
            parent_id=None,
            generation=0,
            client_id=client_id,
            user_id=user_id,
            sid=sid,
            scope=tuple(scope),
            auth_time=auth_time,
            offline=offline,
            created_at=now,
            expires_at=new.expires_at,
            dpop_jkt=dpop_jkt,
            resources=tuple(resources),
        )
    )
    return token


async def redeem_refresh_token(
    store: RefreshTokenStore, settings: Settings, clock: Clock, *, token: str, client_id: str
) -> RedeemedRefreshToken:
    """Rotate ``token`` for ``client_id`` atomically in the store and return its successor.

    Raises RefreshTokenRefused for an unknown, expired, revoked, reused or foreign token, or
    one whose user is disabled (RFC 6749 section 5.2 invalid_grant in every case).
    """
    now = clock()
    raw, new = _new_row(settings, now)
    result = await store.rotate_refresh_token(
        RefreshRotationRequest(
            token_hash=hash_refresh_token(token),
            client_id=client_id,
            successor=new,
            now=now,
            reuse_grace=settings.refresh_reuse_grace,
        )
    )
    if result.successor is None:
        raise RefreshTokenRefused(result.outcome)
    return RedeemedRefreshToken(raw, result.successor)


async def find_refresh_token(store: RefreshTokenStore, token: str) -> RefreshTokenRecord | None:
    """The stored row of a raw token, without changing it (for checks that consume nothing)."""
    return await store.get_refresh_token(hash_refresh_token(token))


async def revoke_refresh_family(
    store: RefreshTokenStore, family_id: str, *, clock: Clock = system_clock
) -> int:
    """End a grant (code replay, /revoke): its refresh tokens and, through the revoked-grant
    record written in the same transaction, its access tokens; how many refresh tokens changed."""
    return await store.revoke_refresh_family(family_id, clock())


async def revoke_session_refresh_tokens(
    store: RefreshTokenStore, sid: str, *, clock: Clock = system_clock
) -> int:
    """End the session-bound grants of an ended IdP session (logout): their refresh tokens and
    every access token carrying the session's sid; offline_access grants carry on."""
    return await store.revoke_session_refresh_tokens(sid, clock())


async def revoke_user_refresh_tokens(
    store: RefreshTokenStore, user_id: str, *, clock: Clock = system_clock
) -> int:
    """End every grant of a user with refresh tokens, offline ones included (user disabled):
    the refresh tokens and the access tokens of those grants."""
    return await store.revoke_user_refresh_tokens(user_id, clock())
