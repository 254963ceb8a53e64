"""ID tokens (OpenID Connect Core 1.0 sections 2 and 3.1.3.6)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from idp.keyring.ring import InvalidSignature, KeyRing
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
    amr: Sequence[str] = (),
    acr: str | None = None,
) -> dict[str, Any]:
    """The claims of an ID token issued at the token endpoint (OIDC Core 1.0 section 2).

    ``azp`` is the client (section 2); ``sid`` names the session (Back-Channel Logout 1.0
    section 2.1); profile and email claims are added when those scopes were granted;
    ``amr`` (RFC 8176) and ``acr`` (section 2) when the sign-in recorded them.
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
    if amr:
        claims["amr"] = list(amr)
    if acr is not None:
        claims["acr"] = acr
    return claims


class InvalidIdToken(ValueError):
    """A token offered as an ID token that is not one this provider issued."""


def id_token_client(claims: Mapping[str, Any]) -> str | None:
    """The client an ID token was issued to: azp, or its single audience (OIDC Core 2)."""
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    azp = claims.get("azp", audience)
    return azp if isinstance(azp, str) and azp else None


def check_id_token(header: Mapping[str, Any], claims: Mapping[str, Any], issuer: str) -> None:
    """Refuse anything but an ID token this provider issued to a client; expiry is not checked.

    Other tokens we sign carry another ``typ`` (RFC 9068 access tokens ``at+jwt``,
    Back-Channel Logout 1.0 logout tokens ``logout+jwt`` and an ``events`` claim), so an
    ``id_token_hint`` (OIDC Core 3.1.2.1, RP-Initiated Logout 1.0 section 2) must be typed
    ``JWT`` (as ours are) or untyped, carry no ``events``, our ``iss``, a ``sub``, and name
    the client it was issued to in ``aud`` / ``azp``.
    """
    typ = header.get("typ", ID_TOKEN_TYP)
    if not isinstance(typ, str) or typ.lower() != ID_TOKEN_TYP.lower() or "events" in claims:
        raise InvalidIdToken("the token is not an ID token")
    if claims.get("iss") != issuer:
        raise InvalidIdToken("the ID token was not issued by this provider")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidIdToken("the ID token has no subject")
    if id_token_client(claims) is None:
        raise InvalidIdToken("the ID token names no client it was issued to")


def verify_id_token_hint(ring: KeyRing, issuer: str, hint: str) -> dict[str, Any]:
    """The claims of an ID token signed by a key we publish, whatever its expiry.

    For ``id_token_hint`` at /authorize (OIDC Core 3.1.2.1) and /logout (RP-Initiated
    Logout 1.0 section 2): both accept an expired ID token.
    """
    try:
        header, claims = ring.verify(hint)
    except InvalidSignature:
        raise InvalidIdToken("the ID token is not signed by this provider") from None
    check_id_token(header, claims, issuer)
    return claims
