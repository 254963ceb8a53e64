"""Authorization codes (RFC 6749 section 4.1.2): random, short-lived, single use, hash stored.

Issued by the sign-in services (:mod:`idp.sso.consent`), redeemed by the
authorization_code grant (:mod:`idp.oauth.grants.authorization_code`).
"""

from __future__ import annotations

import hashlib
import secrets

from idp.clock import Clock
from idp.oauth.authorization import AuthorizationRequest
from idp.store.base import AuthorizationCodeRecord, CodeStore

CODE_LIFETIME = 60


def code_hash(code: str) -> bytes:
    """The stored form of a code: its SHA-256 (the code has 256 random bits)."""
    return hashlib.sha256(code.encode()).digest()


async def issue_code(
    store: CodeStore,
    clock: Clock,
    request: AuthorizationRequest,
    *,
    user_id: str,
    sid: str,
    auth_time: float,
    amr: tuple[str, ...] = (),
    acr: str | None = None,
) -> str:
    """Store a new code for the request and return it; it lives 60 s (RFC 6749 4.1.2).

    ``amr`` and ``acr`` say how the session's user authenticated, for the ID token."""
    code = secrets.token_urlsafe(32)
    now = clock()
    await store.create_authorization_code(
        AuthorizationCodeRecord(
            id=secrets.token_urlsafe(16),
            code_hash=code_hash(code),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            user_id=user_id,
            sid=sid,
            scope=request.scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            auth_time=auth_time,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
            amr=amr,
            acr=acr,
            resources=request.resources,
            dpop_jkt=request.dpop_jkt,
        )
    )
    return code
