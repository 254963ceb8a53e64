"""RP-Initiated Logout 1.0: checking the logout request's parameters (section 2).

The protocol floor: :func:`check_logout_request` runs the named checks in order and is
called by the sso logout service (:mod:`idp.sso.logout`); it reads clients from the store
and verifies an id_token_hint against the key ring, and decides nothing about sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.keyring.ring import KeyRing
from idp.oauth import id_token
from idp.store.base import ClientRecord, Store

MAX_VALUE_LENGTH = 8192


class InvalidLogoutRequest(Exception):
    """The logout request cannot be honoured as asked; show an error page, never redirect."""


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request: who asked, where to go afterwards, and the hint's claims."""

    client_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None
    hint: dict[str, Any] | None

    def to_document(self) -> dict[str, str | None]:
        """What a confirmation form carries; the hint has done its work by then."""
        return {
            "client_id": self.client_id,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> LogoutRequest:
        return cls(
            document.get("client_id"),
            document.get("post_logout_redirect_uri"),
            document.get("state"),
            None,
        )


def verify_id_token_hint(ring: KeyRing, issuer: str, hint: str) -> dict[str, Any]:
    """The claims of an ID token we issued to a client; expiry does not matter (section 2).

    An access token or a logout token, though signed by us, is not an ID token.
    """
    try:
        return id_token.verify_id_token_hint(ring, issuer, hint)
    except id_token.InvalidIdToken:
        raise InvalidLogoutRequest("The id_token_hint is not a valid ID token.") from None


def hint_client_id(claims: Mapping[str, Any]) -> str | None:
    """The client an ID token was issued to: azp, or its single audience."""
    return id_token.id_token_client(claims)


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


def check_lengths(params: Mapping[str, str]) -> None:
    """No parameter value is longer than an ID token hint may be."""
    if any(len(v) > MAX_VALUE_LENGTH for v in params.values()):
        raise InvalidLogoutRequest("A parameter is too long.")


async def check_logout_request(
    params: Mapping[str, str], store: Store, ring: KeyRing, issuer: str
) -> tuple[LogoutRequest, ClientRecord | None]:
    """Run the checks in order: lengths, hint, client, post-logout redirect URI (section 2).

    The checked request and the client it speaks for, if any; the first failure raises
    :class:`InvalidLogoutRequest`.
    """
    check_lengths(params)
    raw_hint = params.get("id_token_hint")
    hint = verify_id_token_hint(ring, issuer, raw_hint) if raw_hint else None
    client_id = check_logout_client(params.get("client_id"), hint)
    client = await store.get_client(client_id) if client_id else None
    if client_id is not None and client is None:
        raise InvalidLogoutRequest("The client_id is not a registered client.")
    uri = check_post_logout_redirect_uri(params.get("post_logout_redirect_uri"), client)
    return LogoutRequest(client_id, uri, params.get("state"), hint), client
