"""JWT access tokens (RFC 9068).

Besides the RFC 9068 section 2.2 claims, a token issued from an authorization grant names
that grant in the private claim ``grant_id`` (RFC 7519 section 4.3), and a token of a
session-bound grant (no offline_access) carries the IdP session's ``sid``. Ending the grant
or the session makes every such token inactive at once (RFC 7009 section 2.1).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

ACCESS_TOKEN_TYP = "at+jwt"
GRANT_ID_CLAIM = "grant_id"
SESSION_ID_CLAIM = "sid"


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    audiences: Sequence[str],
    client_id: str,
    scope: Sequence[str],
    issued_at: int,
    lifetime: int,
    grant_id: str | None = None,
    sid: str | None = None,
) -> dict[str, Any]:
    """The claims of an access token (RFC 9068 section 2.2).

    ``aud`` is a single string when there is one audience, as RFC 7519 section 4.1.3 allows;
    ``scope`` is present when any scope was granted (RFC 9068 section 2.2.3); ``grant_id``
    and ``sid`` when the token comes from an authorization grant (bound to a session).
    """
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audiences[0] if len(audiences) == 1 else list(audiences),
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
    }
    if scope:
        claims["scope"] = " ".join(scope)
    if grant_id is not None:
        claims[GRANT_ID_CLAIM] = grant_id
    if sid is not None:
        claims[SESSION_ID_CLAIM] = sid
    return claims


def session_bound_sid(sid: str | None, offline: bool) -> str | None:
    """The sid to put in a grant's access tokens: none for an offline_access grant, which
    outlives the session (OpenID Connect Core 1.0 section 11)."""
    return None if offline else sid
