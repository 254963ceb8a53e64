"""RP-Initiated Logout 1.0: checking the logout request's parameters (section 2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.keyring.ring import InvalidSignature, KeyRing
from idp.store.base import ClientRecord


class InvalidLogoutRequest(Exception):
    """The logout request cannot be honoured as asked; show an error page, never redirect."""


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request: who asked, where to go afterwards, and the hint's claims."""

    client_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None
    hint: dict[str, Any] | None


def verify_id_token_hint(ring: KeyRing, issuer: str, hint: str) -> dict[str, Any]:
    """The claims of an ID token we issued; expiry does not matter here (section 2)."""
    try:
        _, claims = ring.verify(hint)
    except InvalidSignature:
        raise InvalidLogoutRequest("The id_token_hint is not a valid ID token.") from None
    if claims.get("iss") != issuer or not isinstance(claims.get("sub"), str):
        raise InvalidLogoutRequest("The id_token_hint was not issued by this provider.")
    return claims


def hint_client_id(claims: Mapping[str, Any]) -> str | None:
    """The client an ID token was issued to: azp, or its single audience."""
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    azp = claims.get("azp", audience)
    return azp if isinstance(azp, str) else None


def check_logout_client(client_id: str | None, hint: Mapping[str, Any] | None) -> str | None:
    """The client the request speaks for; client_id and the hint's audience must agree."""
    from_hint = hint_client_id(hint) if hint is not None else None
    if client_id is not None and from_hint is not None and client_id != from_hint:
        raise InvalidLogoutRequest("The client_id does not match the id_token_hint.")
    return client_id or from_hint


def check_post_logout_redirect_uri(uri: str | None, client: ClientRecord | None) -> str | None:
    """The URI equals one the client registered, by simple string comparison (section 3.1)."""
    if uri is None:
        return None
    if client is None:
        raise InvalidLogoutRequest(
            "A post_logout_redirect_uri needs a client_id or an id_token_hint."
        )
    if uri not in client.post_logout_redirect_uris:
        raise InvalidLogoutRequest("The post_logout_redirect_uri is not registered.")
    return uri
