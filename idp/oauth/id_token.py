"""ID tokens (OpenID Connect Core 1.0 sections 2 and 3.1.3.6)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from idp.oauth.claims import user_claims
from idp.store.base import UserRecord

ID_TOKEN_TYP = "JWT"
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def at_hash(access_token: str, alg: str) -> str:
    """The left half of the access token's hash, by the ID token's alg (OIDC Core 3.1.3.6)."""
    digest = _HASHES[alg[-3:]](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def id_token_claims(
    *,
    issuer: str,
    user: UserRecord,
    client_id: str,
    scope: Sequence[str],
    nonce: str | None,
    sid: str,
    auth_time: float,
    issued_at: int,
    lifetime: int,
    access_token: str,
    alg: str,
) -> dict[str, Any]:
    """The claims of an ID token issued at the token endpoint (OIDC Core 1.0 section 2).

    ``azp`` is the client (section 2); ``sid`` names the session (Back-Channel Logout 1.0
    section 2.1); profile and email claims are added when those scopes were granted.
    """
    claims: dict[str, Any] = {
        **user_claims(user, scope),
        "iss": issuer,
        "sub": user.id,
        "aud": client_id,
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "auth_time": int(auth_time),
        "sid": sid,
        "azp": client_id,
        "at_hash": at_hash(access_token, alg),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return claims
