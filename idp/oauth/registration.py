"""Client registration rules (metadata names from RFC 7591 section 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.config import SUPPORTED_ALGS
from idp.oauth.client_auth import (
    AUTH_METHODS,
    hash_client_secret,
    new_client_id,
    new_client_secret,
)
from idp.oauth.errors import OAuthError
from idp.oauth.scopes import parse_scope
from idp.oauth.uris import (
    InvalidURI,
    check_backchannel_logout_uri,
    check_redirect_uri,
    check_resource_uri,
)
from idp.store.base import ClientRecord

GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")


class InvalidClientMetadata(ValueError):
    """Registration input that cannot make a valid client (RFC 7591 section 3.2.2)."""


@dataclass(frozen=True)
class ClientRequest:
    """What an administrator asks for when registering a client."""

    name: str
    redirect_uris: Sequence[str] = ()
    post_logout_redirect_uris: Sequence[str] = ()
    grant_types: Sequence[str] = ()
    scope: str = ""
    audiences: Sequence[str] = ()
    public: bool = False
    token_endpoint_auth_method: str | None = None
    access_token_alg: str = "RS256"
    id_token_alg: str = "RS256"
    require_consent: bool = False
    backchannel_logout_uri: str | None = None


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _auth_method(request: ClientRequest) -> str:
    method = request.token_endpoint_auth_method
    if method is None:
        return "none" if request.public else "client_secret_basic"
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token endpoint auth method must be one of {AUTH_METHODS}")
    if request.public != (method == "none"):
        raise InvalidClientMetadata(
            "a public client uses token endpoint auth method 'none'; a confidential one may not"
        )
    return method


def _grant_types(request: ClientRequest, public: bool) -> tuple[str, ...]:
    grants = _unique(request.grant_types) or (
        ("authorization_code",) if public else ("client_credentials",)
    )
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise InvalidClientMetadata(f"unknown grant type {unknown[0]!r}; one of {GRANT_TYPES}")
    if public and "client_credentials" in grants:
        raise InvalidClientMetadata("client_credentials needs a confidential client")
    return grants


def build_client(request: ClientRequest, now: float) -> tuple[ClientRecord, str | None]:
    """Validate a registration request; return the record and, if confidential, the secret."""
    name = request.name.strip()
    if not name or len(name) > 200:
        raise InvalidClientMetadata("client name must be 1 to 200 characters")
    method = _auth_method(request)
    public = method == "none"
    for alg in (request.access_token_alg, request.id_token_alg):
        if alg not in SUPPORTED_ALGS:
            raise InvalidClientMetadata(f"signing algorithm must be one of {SUPPORTED_ALGS}")
    try:
        redirect_uris = tuple(check_redirect_uri(u) for u in _unique(request.redirect_uris))
        logout_uris = tuple(
            check_redirect_uri(u) for u in _unique(request.post_logout_redirect_uris)
        )
        audiences = tuple(check_resource_uri(u) for u in _unique(request.audiences))
        backchannel = (
            check_backchannel_logout_uri(request.backchannel_logout_uri)
            if request.backchannel_logout_uri is not None
            else None
        )
        scope = parse_scope(request.scope)
    except InvalidURI as exc:
        raise InvalidClientMetadata(str(exc)) from None
    except OAuthError as exc:
        raise InvalidClientMetadata(exc.description) from None
    grants = _grant_types(request, public)
    if "authorization_code" in grants and not redirect_uris:
        raise InvalidClientMetadata("the authorization_code grant needs at least one redirect URI")
    secret = None if public else new_client_secret()
    record = ClientRecord(
        client_id=new_client_id(),
        name=name,
        secret_hash=hash_client_secret(secret) if secret else None,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=grants,
        scope=scope,
        audiences=audiences,
        token_endpoint_auth_method=method,
        access_token_alg=request.access_token_alg,
        id_token_alg=request.id_token_alg,
        created_at=now,
        require_consent=request.require_consent,
        backchannel_logout_uri=backchannel,
    )
    return record, secret
