"""Claims about the user that scopes release (OpenID Connect Core 1.0 section 5.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idp.store.base import UserRecord

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "preferred_username"),
    "email": ("email",),
}
CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "azp",
    "at_hash",
    "amr",
    "acr",
    "name",
    "preferred_username",
    "email",
)


def user_claims(user: UserRecord, scope: Sequence[str]) -> dict[str, Any]:
    """``sub`` and the claims the granted scopes release, leaving out values the user lacks."""
    values: dict[str, Any] = {
        "name": user.name,
        "preferred_username": user.username,
        "email": user.email,
    }
    claims: dict[str, Any] = {"sub": user.id}
    for each in scope:
        for name in SCOPE_CLAIMS.get(each, ()):
            if values[name] is not None:
                claims[name] = values[name]
    return claims
