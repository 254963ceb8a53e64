"""Tokens a client hands back to the server: which kind each is, and whether it is still live.

Shared by introspection (RFC 7662) and revocation (RFC 7009). Both carry an optional
``token_type_hint``; the server may ignore it when it can tell the type itself (RFC 7662
section 2.1, RFC 7009 section 2.1), and here it always can: an access token is a compact
JWS (two dots), a refresh token is 43 base64url characters without a dot. So a wrong or
unknown hint never hides a token.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.clock import Clock
from idp.keyring.ring import KeyRing
from idp.oauth.bearer import verify_access_token
from idp.oauth.refresh_tokens import find_refresh_token
from idp.store.base import RefreshTokenRecord, Store
from idp.verify.errors import VerificationError
from idp.verify.result import VerifiedToken

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")
MAX_ACCESS_TOKEN_LENGTH = 8192
MAX_REFRESH_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class TokenCheck:
    """What checking a presented token needs: the issuer, the keys as of now, the clock."""

    issuer: str
    ring: KeyRing
    clock: Clock
    store: Store


def is_access_token_shaped(token: str) -> bool:
    """A compact JWS has exactly three dot-separated parts; our refresh tokens have none."""
    return token.count(".") == 2


def signed_access_token(token: str, check: TokenCheck) -> VerifiedToken | None:
    """The claims of one of our access tokens whose signature and claims hold right now.

    The signature must verify under a key the ring publishes (a revoked key never is, RFC
    9068 section 4), ``typ`` must be at+jwt, ``iss`` ours, and ``exp`` strictly in the
    future by the server's own clock (it issued the token, so no leeway applies to expiry).
    None for anything else, whatever the reason. Revocation is not consulted here: see
    :func:`idp.oauth.bearer.token_standing`.
    """
    if len(token) > MAX_ACCESS_TOKEN_LENGTH or not is_access_token_shaped(token):
        return None
    now = check.clock()
    try:
        verified = verify_access_token(
            token, check.ring.verification, issuer=check.issuer, audience=None, now=now
        )
    except VerificationError:
        return None
    if verified.expires_at <= now:
        return None
    return verified


async def known_refresh_token(token: str, check: TokenCheck) -> RefreshTokenRecord | None:
    """The stored row of a refresh token that has not expired, rotated or revoked or not."""
    if len(token) > MAX_REFRESH_TOKEN_LENGTH or "." in token:
        return None
    record = await find_refresh_token(check.store, token)
    if record is None or record.expires_at <= check.clock():
        return None
    return record


def refresh_token_is_live(record: RefreshTokenRecord, now: float) -> bool:
    """Usable right now: neither rotated (its successor is the live one), revoked nor expired."""
    return record.rotated_at is None and record.revoked_at is None and record.expires_at > now
