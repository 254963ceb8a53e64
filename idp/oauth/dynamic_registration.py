"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), as pure
functions: client metadata in, a validated client out; a client out, its metadata document.

The decisions made here:

- The metadata is checked by the rules an administrator's registration follows
  (:mod:`idp.oauth.registration`): exact, safe redirect URIs; known grant types; a known
  token endpoint authentication method; jwks or jwks_uri; scope; client_name. A bad redirect
  URI is ``invalid_redirect_uri``, anything else ``invalid_client_metadata`` (RFC 7591
  section 3.2.2). Members this server does not know are ignored (section 2).
- ``response_types`` may only be ``code``, and only with the authorization_code grant, and
  the other way round (section 2.1).
- ``client_uri``, ``logo_uri``, ``policy_uri`` and ``tos_uri`` must be https URLs; they are
  checked but not kept, so the answer does not echo them (section 3.2.1 lets the server
  refuse or replace what was asked for).
- Registered clients are third-party: each sign-in asks for consent, and the ``idp:admin``
  scope is never given.
- The ``client_name`` need not be unique: the client's stored name is the client_name
  followed by its client_id in parentheses, so two installations of one native app can both
  register; the metadata shows the client_name as it was asked for.
- Open registration (no initial access token) takes public native apps only: method
  ``none``, the authorization_code and refresh_token grants, redirect URIs on a loopback IP
  address over http or with a private-use scheme (RFC 8252 sections 7.1 and 7.3), and no
  URL the server would call (jwks_uri, backchannel_logout_uri).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from idp.config import SUPPORTED_ALGS
from idp.oauth.client_auth import hash_client_secret
from idp.oauth.errors import OAuthError
from idp.oauth.registration import (
    ADMIN_SCOPE,
    ClientRequest,
    InvalidClientMetadata,
    build_client,
    default_grant_types,
)
from idp.oauth.uris import BackchannelRules, InvalidURI, check_redirect_uri, ip_literal
from idp.store.base import ClientRecord

RESPONSE_TYPES = ("code",)
"""The response types a registered client may use (RFC 7591 section 2.1)."""

OPEN_GRANTS = frozenset({"authorization_code", "refresh_token"})
"""The grants of a client registered without an initial access token."""

INFORMATION_URIS = ("client_uri", "logo_uri", "policy_uri", "tos_uri")
"""Human-readable pages about the client (RFC 7591 section 2): https URLs only."""

MAX_CLIENT_NAME = 150
"""client_name's longest (the stored name adds the client_id in parentheses)."""

DEFAULT_CLIENT_NAME = "registered client"


class InvalidClientMetadataError(OAuthError):
    """RFC 7591 section 3.2.2: a metadata value is invalid or not allowed."""

    error = "invalid_client_metadata"


class InvalidRedirectUriError(OAuthError):
    """RFC 7591 section 3.2.2: a redirect URI is invalid or not allowed."""

    error = "invalid_redirect_uri"


class InvalidToken(OAuthError):
    """RFC 6750 section 3.1: the bearer token (an initial or a registration access token) is
    missing, unknown, expired or used up: 401 with a Bearer challenge."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str) -> None:
        challenge = 'Bearer realm="idp", error="invalid_token"'
        super().__init__(description, headers={"WWW-Authenticate": challenge})


def registration_token_matches(client: ClientRecord | None, token: str) -> bool:
    """Whether ``token`` is the registration access token of ``client`` (RFC 7592 section 3),
    compared in constant time; a missing client or one without a token never matches, after
    the same comparison."""
    return _hash_matches(client.registration_token_hash if client is not None else None, token)


def secret_matches(client: ClientRecord, secret: str) -> bool:
    """Whether ``secret`` is the client's current secret (constant time)."""
    return _hash_matches(client.secret_hash, secret)


def _hash_matches(stored: bytes | None, presented: str) -> bool:
    """Whether ``stored`` is the SHA-256 of ``presented``, compared in constant time; None
    never matches, after the same comparison."""
    matches = hmac.compare_digest(stored or b"\0" * 32, hash_client_secret(presented))
    return stored is not None and matches


def _metadata_error(message: str) -> InvalidClientMetadataError:
    return InvalidClientMetadataError(message)


def _string(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > 2048:
        raise _metadata_error(f"{name} must be a non-empty string")
    return value


def _strings(document: Mapping[str, Any], name: str) -> list[str] | None:
    value = document.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(isinstance(v, str) and v and len(v) <= 2048 for v in value)
    ):
        raise _metadata_error(f"{name} must be an array of non-empty strings")
    return value


def _flag(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise _metadata_error(f"{name} must be true or false")
    return value


def _redirect_uris(document: Mapping[str, Any], name: str) -> list[str]:
    """The redirect URIs under ``name``, each exact and safe (RFC 6749 section 3.1.2)."""
    uris = _strings(document, name) or []
    for uri in uris:
        try:
            check_redirect_uri(uri)
        except InvalidURI as exc:
            raise InvalidRedirectUriError(str(exc)) from None
    return uris


def _information_uris(document: Mapping[str, Any]) -> None:
    for name in INFORMATION_URIS:
        value = _string(document, name)
        if value is None:
            continue
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise _metadata_error(f"{name} must be an https URL")


def _grant_types(
    document: Mapping[str, Any], redirect_uris: Sequence[str], public: bool
) -> list[str]:
    """The grant types asked for (none: the registration rules' defaults), consistent with
    ``response_types`` when given: ``code`` exactly with authorization_code (RFC 7591
    section 2.1)."""
    grants = _strings(document, "grant_types") or []
    asked = _strings(document, "response_types")
    unknown = [r for r in asked or () if r not in RESPONSE_TYPES]
    if unknown:
        raise _metadata_error(f"unsupported response type {unknown[0]!r}; only 'code'")
    effective = grants or default_grant_types(redirect_uris, public)
    if asked is not None and ("code" in asked) != ("authorization_code" in effective):
        raise _metadata_error(
            "response_types 'code' goes with the authorization_code grant, and only with it"
        )
    return grants


def _jwks(document: Mapping[str, Any]) -> str | None:
    value = document.get("jwks")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _metadata_error("jwks must be a JWK Set (a JSON object)")
    return json.dumps(value)


def _scope(document: Mapping[str, Any]) -> str:
    scope = _string(document, "scope") or ""
    if ADMIN_SCOPE in scope.split(" "):
        raise _metadata_error(f"the {ADMIN_SCOPE} scope is not given to registered clients")
    return scope


def _alg(document: Mapping[str, Any]) -> str:
    alg = _string(document, "id_token_signed_response_alg") or "RS256"
    if alg not in SUPPORTED_ALGS:
        raise _metadata_error(f"id_token_signed_response_alg must be one of {SUPPORTED_ALGS}")
    return alg


def _client_name(document: Mapping[str, Any]) -> str:
    name = (_string(document, "client_name") or DEFAULT_CLIENT_NAME).strip()
    if not name or len(name) > MAX_CLIENT_NAME or not name.isprintable():
        raise _metadata_error(f"client_name must be 1 to {MAX_CLIENT_NAME} printable characters")
    return name


def client_request(document: Mapping[str, Any]) -> ClientRequest:
    """The registration a client's metadata asks for (RFC 7591 section 2), with its values'
    shapes checked; :func:`registered_client` applies the registration rules to it."""
    if not isinstance(document, Mapping):
        raise _metadata_error("the client metadata must be a JSON object")
    method = _string(document, "token_endpoint_auth_method") or "client_secret_basic"
    public = method == "none"
    redirect_uris = _redirect_uris(document, "redirect_uris")
    logout_uris = _redirect_uris(document, "post_logout_redirect_uris")
    _information_uris(document)
    return ClientRequest(
        name=_client_name(document),
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=_grant_types(document, redirect_uris, public),
        scope=_scope(document),
        public=public,
        token_endpoint_auth_method=method,
        id_token_alg=_alg(document),
        require_consent=True,
        backchannel_logout_uri=_string(document, "backchannel_logout_uri"),
        require_par=_flag(document, "require_pushed_authorization_requests"),
        jwks=_jwks(document),
        jwks_uri=_string(document, "jwks_uri"),
        require_dpop=_flag(document, "dpop_bound_access_tokens"),
    )


def stored_name(client_name: str, client_id: str) -> str:
    """The unique name a registered client is kept under: its client_name and client_id."""
    return f"{client_name} ({client_id})"


def client_name(client: ClientRecord) -> str:
    """The client_name of a registered client (its stored name without the client_id)."""
    return client.name.removesuffix(f" ({client.client_id})")


def registered_client(
    request: ClientRequest, now: float, rules: BackchannelRules
) -> tuple[ClientRecord, str | None]:
    """A new client from ``request`` by the registration rules, and its secret when its
    method needs one; raises InvalidClientMetadataError."""
    try:
        record, secret = build_client(request, now, rules)
    except InvalidClientMetadata as exc:
        raise _metadata_error(str(exc)) from None
    return replace(record, name=stored_name(record.name, record.client_id)), secret


def replaced_client(
    current: ClientRecord, request: ClientRequest, rules: BackchannelRules
) -> ClientRecord:
    """The client with its metadata replaced by ``request`` (RFC 7592 section 2.2): its
    client_id, secret, registration access token and creation time stay, and so do what only
    an administrator sets (audiences, consent, second factor, access-token algorithm); so must
    its token endpoint authentication method (a change would need a new secret or none)."""
    if request.token_endpoint_auth_method != current.token_endpoint_auth_method:
        raise _metadata_error(
            "token_endpoint_auth_method cannot change; register a new client instead"
        )
    fresh, _ = registered_client(request, current.created_at, rules)
    return replace(
        fresh,
        client_id=current.client_id,
        name=stored_name(client_name(fresh), current.client_id),
        secret_hash=current.secret_hash,
        secret_sealed=current.secret_sealed,
        previous_secret_hash=current.previous_secret_hash,
        previous_secret_expires_at=current.previous_secret_expires_at,
        created_at=current.created_at,
        registration_token_hash=current.registration_token_hash,
        audiences=current.audiences,
        require_consent=current.require_consent,
        require_mfa=current.require_mfa,
        access_token_alg=current.access_token_alg,
    )


def _open_redirect_uri(uri: str) -> bool:
    """A native app's redirect URI (RFC 8252): http on a loopback IP address, or a
    private-use (reverse-domain) scheme."""
    parts = urlsplit(uri)
    if parts.scheme == "http":
        address = ip_literal(parts.hostname or "")
        return address is not None and address.is_loopback
    return parts.scheme not in ("https", "")


def open_registration_refusal(request: ClientRequest) -> str | None:
    """Why a registration without an initial access token is refused, or None when open
    registration takes it (a public native app; see the module)."""
    if request.token_endpoint_auth_method != "none":
        return "open registration takes public clients only (token_endpoint_auth_method none)"
    if not set(request.grant_types) <= OPEN_GRANTS:
        return "open registration takes the authorization_code and refresh_token grants only"
    uris = [*request.redirect_uris, *request.post_logout_redirect_uris]
    if not all(_open_redirect_uri(uri) for uri in uris):
        return (
            "open registration takes native apps only: redirect URIs on http://127.0.0.1 "
            "or [::1], or with a private-use scheme"
        )
    if request.jwks_uri is not None or request.backchannel_logout_uri is not None:
        return "open registration takes no jwks_uri or backchannel_logout_uri"
    return None


def response_types(client: ClientRecord) -> list[str]:
    return ["code"] if "authorization_code" in client.grant_types else []


def client_metadata(client: ClientRecord, issuer: str) -> dict[str, Any]:
    """The client's registered metadata (RFC 7591 section 3.2.1, RFC 7592 section 3), with
    its registration_client_uri and never a secret or a token."""
    document: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at),
        "client_name": client_name(client),
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": response_types(client),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_alg,
        "dpop_bound_access_tokens": client.require_dpop,
        "require_pushed_authorization_requests": client.require_par,
        "registration_client_uri": registration_client_uri(issuer, client.client_id),
    }
    if client.scope:
        document["scope"] = " ".join(client.scope)
    if client.post_logout_redirect_uris:
        document["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.backchannel_logout_uri:
        document["backchannel_logout_uri"] = client.backchannel_logout_uri
    if client.jwks is not None:
        document["jwks"] = json.loads(client.jwks)
    if client.jwks_uri is not None:
        document["jwks_uri"] = client.jwks_uri
    if client.secret_hash is not None:
        document["client_secret_expires_at"] = 0
    return document


def registration_client_uri(issuer: str, client_id: str) -> str:
    """Where a registered client's registration is managed (RFC 7592 section 2)."""
    return f"{issuer}/register/{client_id}"
