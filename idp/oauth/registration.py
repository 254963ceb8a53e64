"""Client registration rules (metadata names from RFC 7591 section 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from idp.config import SUPPORTED_ALGS
from idp.oauth.client_auth import (
    AUTH_METHODS,
    ISSUED_SECRET_METHODS,
    hash_client_secret,
    new_client_id,
    new_client_secret,
)
from idp.oauth.client_keys import parse_client_jwks
from idp.oauth.device import DEVICE_CODE_GRANT
from idp.oauth.errors import OAuthError
from idp.oauth.scopes import parse_scope
from idp.oauth.uris import (
    STRICT_BACKCHANNEL,
    BackchannelRules,
    InvalidURI,
    check_backchannel_logout_uri,
    check_jwks_uri,
    check_redirect_uri,
    check_resource_uri,
)
from idp.store.base import ClientRecord

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
"""The token exchange grant type (RFC 8693 section 2.1)."""

GRANT_TYPES = (
    "client_credentials",
    "authorization_code",
    "refresh_token",
    DEVICE_CODE_GRANT,
    TOKEN_EXCHANGE,
)
"""The grants a client may be registered for; the device code grant is RFC 8628's."""


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
    require_mfa: bool = False
    require_par: bool = False
    jwks: str | None = None
    """private_key_jwt: the client's public keys, a JWK Set document (JSON text)."""
    jwks_uri: str | None = None
    """private_key_jwt: where the client publishes its public keys instead."""
    require_dpop: bool = False
    """Token requests must carry a DPoP proof (RFC 9449 section 5.2, dpop_bound_access_tokens)."""
    token_exchange_subject_clients: Sequence[str] = ()
    """Token exchange (RFC 8693): the clients whose tokens this client may exchange (empty: any)."""


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


def default_grant_types(redirect_uris: Sequence[str], public: bool) -> tuple[str, ...]:
    """The grants of a client registered without any: a client with redirect URIs signs
    people in (authorization_code, refresh_token); a confidential one without is a machine
    client (client_credentials). RFC 7591 section 2 defaults to authorization_code."""
    if redirect_uris or public:
        return ("authorization_code", "refresh_token") if redirect_uris else ("authorization_code",)
    return ("client_credentials",)


def _grant_types(request: ClientRequest, public: bool) -> tuple[str, ...]:
    grants = _unique(request.grant_types) or default_grant_types(request.redirect_uris, public)
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise InvalidClientMetadata(f"unknown grant type {unknown[0]!r}; one of {GRANT_TYPES}")
    if public and "client_credentials" in grants:
        raise InvalidClientMetadata("client_credentials needs a confidential client")
    if public and TOKEN_EXCHANGE in grants:
        raise InvalidClientMetadata("token exchange needs a confidential client")
    return grants


def _subject_clients(values: Sequence[str]) -> tuple[str, ...]:
    """The client ids a token-exchange client accepts subject tokens of (RFC 8693 section 5:
    the server decides whose tokens a client may exchange); empty means any."""
    ids = _unique([v.strip() for v in values])
    if any(not v or len(v) > 200 for v in ids):
        raise InvalidClientMetadata(
            "a token exchange subject client id must be 1 to 200 characters"
        )
    return ids


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 200:
        raise InvalidClientMetadata("client name must be 1 to 200 characters")
    return name


def _uris_and_scope(
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    audiences: Sequence[str],
    scope: str,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    try:
        return (
            tuple(check_redirect_uri(u) for u in _unique(redirect_uris)),
            tuple(check_redirect_uri(u) for u in _unique(post_logout_redirect_uris)),
            tuple(check_resource_uri(u) for u in _unique(audiences)),
            parse_scope(scope),
        )
    except InvalidURI as exc:
        raise InvalidClientMetadata(str(exc)) from None
    except OAuthError as exc:
        raise InvalidClientMetadata(exc.description) from None


def _check_redirect_needed(grants: Sequence[str], redirect_uris: Sequence[str]) -> None:
    if "authorization_code" in grants and not redirect_uris:
        raise InvalidClientMetadata("the authorization_code grant needs at least one redirect URI")


def _backchannel_uri(uri: str | None, rules: BackchannelRules) -> str | None:
    try:
        return check_backchannel_logout_uri(uri, rules) if uri is not None else None
    except InvalidURI as exc:
        raise InvalidClientMetadata(str(exc)) from None


def _client_keys(
    method: str, jwks: str | None, jwks_uri: str | None, rules: BackchannelRules
) -> tuple[str | None, str | None]:
    """A client's public keys: at most one of a JWK Set with at least one usable key, or a
    jwks_uri this server may fetch (RFC 7591 section 2). A private_key_jwt client needs one;
    any other client may register keys to sign request objects with (RFC 9101)."""
    if jwks is not None and jwks_uri is not None:
        raise InvalidClientMetadata("give jwks or jwks_uri, not both")
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise InvalidClientMetadata("a private_key_jwt client needs jwks or jwks_uri (one of them)")
    if jwks is not None:
        try:
            parse_client_jwks(jwks)
        except ValueError as exc:
            raise InvalidClientMetadata(f"jwks: {exc}") from None
        return jwks, None
    if jwks_uri is None:
        return None, None
    try:
        return None, check_jwks_uri(jwks_uri, rules)
    except InvalidURI as exc:
        raise InvalidClientMetadata(str(exc)) from None


def build_client(
    request: ClientRequest, now: float, backchannel: BackchannelRules = STRICT_BACKCHANNEL
) -> tuple[ClientRecord, str | None]:
    """Validate a registration request; return the record and, if confidential, the secret.

    ``backchannel`` says where a back-channel logout URI may point (see ``uris``).
    """
    name = _name(request.name)
    method = _auth_method(request)
    public = method == "none"
    for alg in (request.access_token_alg, request.id_token_alg):
        if alg not in SUPPORTED_ALGS:
            raise InvalidClientMetadata(f"signing algorithm must be one of {SUPPORTED_ALGS}")
    redirect_uris, logout_uris, audiences, scope = _uris_and_scope(
        request.redirect_uris, request.post_logout_redirect_uris, request.audiences, request.scope
    )
    backchannel_uri = _backchannel_uri(request.backchannel_logout_uri, backchannel)
    grants = _grant_types(request, public)
    _check_redirect_needed(grants, redirect_uris)
    check_admin_scope_grants(scope, grants)
    jwks, jwks_uri = _client_keys(method, request.jwks, request.jwks_uri, backchannel)
    secret = new_client_secret() if method in ISSUED_SECRET_METHODS else None
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
        backchannel_logout_uri=backchannel_uri,
        require_mfa=request.require_mfa,
        require_par=request.require_par,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_dpop=request.require_dpop,
        token_exchange_subject_clients=_subject_clients(request.token_exchange_subject_clients),
    )
    return record, secret


@dataclass(frozen=True)
class ClientUpdate:
    """The metadata an administrator may change on a registered client (None: unchanged)."""

    name: str | None = None
    redirect_uris: Sequence[str] | None = None
    post_logout_redirect_uris: Sequence[str] | None = None
    grant_types: Sequence[str] | None = None
    scope: str | None = None
    audiences: Sequence[str] | None = None
    backchannel_logout_uri: str | None = None  # "" removes it
    require_mfa: bool | None = None
    require_par: bool | None = None
    jwks: str | None = None
    """A new JWK Set for a private_key_jwt client (replaces its keys or its jwks_uri)."""
    jwks_uri: str | None = None
    """A new jwks_uri for a private_key_jwt client (replaces its keys or its JWK Set)."""
    require_dpop: bool | None = None
    token_exchange_subject_clients: Sequence[str] | None = None
    """A new list of the clients whose tokens it may exchange ([] : any)."""


def apply_client_update(
    client: ClientRecord, update: ClientUpdate, backchannel: BackchannelRules = STRICT_BACKCHANNEL
) -> ClientRecord:
    """The client with ``update`` applied, validated by the same rules as registration.

    The client_id, secret, authentication method and algorithms never change here.
    """
    name = _name(update.name) if update.name is not None else client.name
    redirect_uris, logout_uris, audiences, scope = _uris_and_scope(
        client.redirect_uris if update.redirect_uris is None else update.redirect_uris,
        (
            client.post_logout_redirect_uris
            if update.post_logout_redirect_uris is None
            else update.post_logout_redirect_uris
        ),
        client.audiences if update.audiences is None else update.audiences,
        " ".join(client.scope) if update.scope is None else update.scope,
    )
    grants = client.grant_types
    if update.grant_types is not None:
        if not update.grant_types:
            raise InvalidClientMetadata("a client needs at least one grant type")
        request = ClientRequest(name=name, grant_types=update.grant_types)
        grants = _grant_types(request, client.is_public)
    _check_redirect_needed(grants, redirect_uris)
    backchannel_uri = client.backchannel_logout_uri
    if update.backchannel_logout_uri is not None:
        backchannel_uri = _backchannel_uri(update.backchannel_logout_uri or None, backchannel)
    check_admin_scope_grants(scope, grants)
    jwks, jwks_uri = client.jwks, client.jwks_uri
    if update.jwks is not None or update.jwks_uri is not None:
        method = client.token_endpoint_auth_method
        jwks, jwks_uri = _client_keys(method, update.jwks, update.jwks_uri, backchannel)
    return replace(
        client,
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=grants,
        scope=scope,
        audiences=audiences,
        backchannel_logout_uri=backchannel_uri,
        require_mfa=client.require_mfa if update.require_mfa is None else update.require_mfa,
        require_par=client.require_par if update.require_par is None else update.require_par,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_dpop=client.require_dpop if update.require_dpop is None else update.require_dpop,
        token_exchange_subject_clients=(
            client.token_exchange_subject_clients
            if update.token_exchange_subject_clients is None
            else _subject_clients(update.token_exchange_subject_clients)
        ),
    )


ADMIN_SCOPE = "idp:admin"
"""The scope that opens the admin API."""


USER_FACING_GRANTS = ("authorization_code", "refresh_token", DEVICE_CODE_GRANT, TOKEN_EXCHANGE)
"""Grants that give a token for a person: signed in through the client, or (token exchange)
the person a token names."""


def check_admin_scope_grants(scope: Sequence[str], grants: Sequence[str]) -> None:
    """Refuse ``idp:admin`` to a client with a grant a person can use.

    Admin rights belong to machine clients (``client_credentials``): through a client with
    the authorization_code, refresh_token or token exchange grant, anyone who signs in could
    obtain a token carrying the admin scope.
    """
    user_grants = [g for g in grants if g in USER_FACING_GRANTS]
    if ADMIN_SCOPE in scope and user_grants:
        raise InvalidClientMetadata(
            f"the {ADMIN_SCOPE} scope is for machine clients only: "
            f"not with the {user_grants[0]} grant"
        )


def admin_audience(issuer: str) -> str:
    """The audience (RFC 8707 resource) of tokens for the admin API: ``<issuer>/admin``."""
    return f"{issuer}/admin"


def admin_client_request(request: ClientRequest, issuer: str) -> ClientRequest:
    """Turn a registration request into one for an admin API client.

    An admin client is confidential, may use ``client_credentials``, has the ``idp:admin``
    scope, and has the admin audience first, so a token requested without ``resource`` is
    addressed to the admin API. Other scopes, audiences and grants asked for are kept.
    """
    if request.public or request.token_endpoint_auth_method == "none":
        raise InvalidClientMetadata("an admin client must be confidential")
    grants = _unique([*request.grant_types, "client_credentials"])
    scope = " ".join(_unique([ADMIN_SCOPE, *(t for t in request.scope.split(" ") if t)]))
    audiences = _unique([admin_audience(issuer), *request.audiences])
    return replace(request, grant_types=grants, scope=scope, audiences=audiences)
