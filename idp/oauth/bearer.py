"""Bearer access tokens presented to our own resources (RFC 6750, RFC 9068 section 4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.keyring.ring import InvalidSignature, KeyRing
from idp.oauth.access_token import ACCESS_TOKEN_TYP
from idp.oauth.errors import InvalidRequest, InvalidToken

REALM = "idp"


def challenge(error: str | None = None, description: str | None = None, **extra: str) -> str:
    """A WWW-Authenticate value for the Bearer scheme (RFC 6750 section 3)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    parts.extend(f'{k}="{v}"' for k, v in extra.items())
    return "Bearer " + ", ".join(parts)


class MissingToken(Exception):
    """No credentials at all: answer 401 with a bare challenge (RFC 6750 section 3.1)."""


def bearer_token(authorizations: list[str], form: Mapping[str, str] | None) -> str:
    """The access token from the Authorization header (RFC 6750 2.1) or form body (2.2)."""
    from_form = form.get("access_token") if form else None
    if len(authorizations) > 1 or (authorizations and from_form):
        raise InvalidRequest("the access token must be sent one way only")
    if authorizations:
        scheme, _, value = authorizations[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MissingToken
        return value.strip()
    if from_form:
        return from_form
    raise MissingToken


def verify_access_token(ring: KeyRing, issuer: str, token: str, now: float) -> dict[str, Any]:
    """The claims of one of our RFC 9068 access tokens, checked as section 4 asks.

    The signature is ours, ``typ`` is ``at+jwt``, ``iss`` is us, and it has not expired.
    """
    try:
        header, claims = ring.verify(token)
    except InvalidSignature:
        raise InvalidToken("the access token is not valid") from None
    if str(header.get("typ", "")).lower() not in (
        ACCESS_TOKEN_TYP,
        f"application/{ACCESS_TOKEN_TYP}",
    ):
        raise InvalidToken("the token is not an access token")
    if claims.get("iss") != issuer:
        raise InvalidToken("the access token was issued by someone else")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or now >= expires:
        raise InvalidToken("the access token has expired")
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken("the access token names no subject")
    return claims
