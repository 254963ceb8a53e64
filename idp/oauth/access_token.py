"""JWT access tokens (RFC 9068)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

ACCESS_TOKEN_TYP = "at+jwt"


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    audiences: Sequence[str],
    client_id: str,
    scope: Sequence[str],
    issued_at: int,
    lifetime: int,
) -> dict[str, Any]:
    """The claims of an access token (RFC 9068 section 2.2).

    ``aud`` is a single string when there is one audience, as RFC 7519 section 4.1.3 allows;
    ``scope`` is present when any scope was granted (RFC 9068 section 2.2.3).
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
    return claims
