"""The authorization request (RFC 6749 section 4.1.1, OpenID Connect Core 1.0 section 3.1.2.1).

Validation is a list of small named checks run in order. The client and its redirect URI
are checked first: until both are known good, an error is shown to the user and never
redirected (RFC 6749 section 4.1.2.1). Every later error is redirected to the client.

The protocol floor: the sign-in services (:mod:`idp.sso.signin`, :mod:`idp.sso.consent`)
call these checks and build their redirect locations here; nothing here sees HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from idp.keyring.ring import KeyRing
from idp.oauth.acr import check_acr_values
from idp.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnsupportedResponseType,
)
from idp.oauth.id_token import InvalidIdToken, verify_id_token_hint
from idp.oauth.pkce import check_challenge
from idp.oauth.resources import requested_resources
from idp.oauth.scopes import parse_scope
from idp.store.base import ClientRecord

STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")
PROMPT_VALUES = frozenset({"none", "login", "consent"})
MAX_VALUE_LENGTH = 2048
MAX_HINT_LENGTH = 8192
MAX_CLIENT_ID_LENGTH = 256
MAX_UI_LOCALES = 10
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,6}$")
_JWK_THUMBPRINT = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""A base64url SHA-256 JWK thumbprint (RFC 7638), unpadded: 43 characters."""


class ClientNotIdentified(Exception):
    """The client_id or redirect_uri is missing or wrong: show an error page, never redirect."""


class AuthorizationError(Exception):
    """An error to send back to the client's redirect URI (RFC 6749 section 4.1.2.1)."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request, everything later steps need to answer it."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    prompt: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    hint_subject: str | None = None
    """The ``sub`` of a valid ``id_token_hint``: the user the client expects."""
    acr_values: tuple[str, ...] = ()
    """The requested authentication context classes (``idp.oauth.acr``)."""
    ui_locales: tuple[str, ...] = ()
    """The languages the pages should be in, most wanted first (OIDC Core 3.1.2.1)."""
    resources: tuple[str, ...] = ()
    """The accepted resource indicators (RFC 8707 section 2.1): the tokens' audiences."""
    dpop_jkt: str | None = None
    """The thumbprint of the DPoP key the code is bound to (RFC 9449 section 10)."""

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AuthorizationRequest:
        values = dict(document)
        values["scope"] = tuple(values["scope"])
        values["prompt"] = tuple(values["prompt"])
        values["acr_values"] = tuple(values.get("acr_values", ()))
        values["ui_locales"] = tuple(values.get("ui_locales", ()))
        values["resources"] = tuple(values.get("resources", ()))
        return cls(**values)


# -- client and redirect URI: never redirected -------------------------------------------


def check_client_id(params: Mapping[str, str]) -> str:
    """client_id is present and plausible (RFC 6749 section 4.1.1)."""
    client_id = params.get("client_id")
    if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ClientNotIdentified("the request has no valid client_id")
    return client_id


def check_client(client: ClientRecord | None) -> ClientRecord:
    """The client is registered and may use the authorization code grant."""
    if client is None:
        raise ClientNotIdentified("the client_id is not a registered client")
    if "authorization_code" not in client.grant_types:
        raise ClientNotIdentified("this client may not use the authorization code flow")
    return client


def check_redirect_uri(params: Mapping[str, str], client: ClientRecord) -> str:
    """redirect_uri equals a registered one exactly (RFC 9700 section 4.1.3, OIDC 3.1.2.1).

    Simple string comparison (RFC 3986 section 6.2.1): no prefix, path, port, query or
    fragment variations are accepted.
    """
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        raise ClientNotIdentified("the request has no redirect_uri")
    if redirect_uri not in client.redirect_uris:
        raise ClientNotIdentified("the redirect_uri is not registered for this client")
    return redirect_uri


# -- the rest: redirected to the client ---------------------------------------------------


def check_lengths(params: Mapping[str, str]) -> None:
    """No parameter value is absurdly long (an ID token hint may be as long as a token)."""
    for name, value in params.items():
        limit = MAX_HINT_LENGTH if name == "id_token_hint" else MAX_VALUE_LENGTH
        if len(value) > limit:
            raise InvalidRequest(f"parameter {name!r} is too long")


def check_request_objects(params: Mapping[str, str]) -> None:
    """A request object still among the parameters is refused: it is unpacked, and its claims
    become the parameters, before these checks (:mod:`idp.oauth.request_object`); OpenID
    Connect's request_uri naming a URL is not supported (Core 1.0 section 6.2)."""
    if "request" in params:
        raise RequestNotSupported("a request object cannot be nested in another")
    if "request_uri" in params:
        raise RequestUriNotSupported("request_uri is not supported")


def check_response_type(params: Mapping[str, str]) -> None:
    """Only the authorization code flow: response_type=code (RFC 6749 section 4.1.1)."""
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")


def check_response_mode(params: Mapping[str, str]) -> None:
    """Responses go in the query (OAuth 2.0 Multiple Response Type Encoding Practices)."""
    mode = params.get("response_mode")
    if mode is not None and mode != "query":
        raise InvalidRequest("only response_mode=query is supported")


def check_scope(params: Mapping[str, str], client: ClientRecord) -> tuple[str, ...]:
    """Scopes are standard OpenID ones or the client's own (RFC 6749 section 3.3).

    Omitted scope means ``openid``. offline_access is dropped unless the client may use
    refresh tokens (OpenID Connect Core 1.0 section 11).
    """
    asked = parse_scope(params.get("scope", "openid"))
    allowed = set(STANDARD_SCOPES) | set(client.scope)
    extra = [s for s in asked if s not in allowed]
    if extra:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(extra)}")
    if "refresh_token" not in client.grant_types:
        asked = tuple(s for s in asked if s != "offline_access")
    if not asked:
        raise InvalidScope("no scope left to grant")
    return asked


def check_pkce(params: Mapping[str, str], client: ClientRecord) -> tuple[str | None, str | None]:
    """PKCE S256: required for public clients, accepted from all (RFC 7636, RFC 9700 2.1.1)."""
    challenge = check_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        required=client.is_public,
    )
    return challenge, params.get("code_challenge_method") if challenge else None


def check_prompt(params: Mapping[str, str]) -> tuple[str, ...]:
    """prompt is a set of none, login, consent; none stands alone (OIDC Core 3.1.2.1)."""
    values = tuple(dict.fromkeys(v for v in params.get("prompt", "").split(" ") if v))
    unknown = [v for v in values if v not in PROMPT_VALUES]
    if unknown:
        raise InvalidRequest(f"unsupported prompt value {unknown[0]!r}")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    return values


def check_max_age(params: Mapping[str, str]) -> int | None:
    """max_age is a non-negative number of seconds (OIDC Core 3.1.2.1)."""
    raw = params.get("max_age")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise InvalidRequest("max_age must be a non-negative integer")
    return int(raw)


def check_id_token_hint(params: Mapping[str, str], ring: KeyRing, issuer: str) -> str | None:
    """id_token_hint, if given, is an ID token we issued; its subject (OIDC Core 3.1.2.1).

    Its signature must verify under a key we publish; it may have expired. A hint that is
    not such an ID token is invalid_request.
    """
    hint = params.get("id_token_hint")
    if hint is None:
        return None
    try:
        claims = verify_id_token_hint(ring, issuer, hint)
    except InvalidIdToken as exc:
        raise InvalidRequest(f"id_token_hint: {exc}") from None
    subject: str = claims["sub"]
    return subject


def check_dpop_jkt(params: Mapping[str, str]) -> str | None:
    """dpop_jkt, if given, is a JWK SHA-256 thumbprint in base64url (RFC 9449 section 10,
    RFC 7638): the key the code will be bound to."""
    jkt = params.get("dpop_jkt")
    if jkt is not None and not _JWK_THUMBPRINT.match(jkt):
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
    return jkt


def identify(params: Mapping[str, str], client: ClientRecord | None) -> tuple[ClientRecord, str]:
    """The checks that must pass before anything may be redirected: client, then redirect_uri."""
    registered = check_client(client)
    return registered, check_redirect_uri(params, registered)


def validate_authorization_request(
    params: Mapping[str, str],
    client: ClientRecord,
    redirect_uri: str,
    ring: KeyRing,
    issuer: str,
    resources: Sequence[str] = (),
) -> AuthorizationRequest:
    """Run the redirectable checks in order; the first failure becomes an AuthorizationError.

    ``ring`` and ``issuer`` check an ``id_token_hint``; ``resources`` are the request's
    ``resource`` values, which may repeat (RFC 8707 section 2).
    """
    state = params.get("state")
    try:
        check_lengths(params)
        check_request_objects(params)
        check_response_type(params)
        check_response_mode(params)
        scope = check_scope(params, client)
        challenge, method = check_pkce(params, client)
        prompt = check_prompt(params)
        max_age = check_max_age(params)
        hint_subject = check_id_token_hint(params, ring, issuer)
        accepted_resources = requested_resources(resources, client)
        dpop_jkt = check_dpop_jkt(params)
    except OAuthError as exc:
        raise AuthorizationError(
            exc, redirect_uri, state if state and len(state) <= MAX_VALUE_LENGTH else None
        ) from None
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=params.get("nonce"),
        code_challenge=challenge,
        code_challenge_method=method,
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        hint_subject=hint_subject,
        acr_values=check_acr_values(params),
        ui_locales=requested_locales(params),
        resources=accepted_resources,
        dpop_jkt=dpop_jkt,
    )


def requested_locales(params: Mapping[str, str]) -> tuple[str, ...]:
    """The ``ui_locales`` language tags, most wanted first (OpenID Connect Core 1.0 section
    3.1.2.1; also RP-Initiated Logout 1.0 section 2).

    A preference, never an error: a tag that is not a well-formed BCP 47 tag is ignored,
    and at most the first ten are kept.
    """
    raw = params.get("ui_locales", "")[:MAX_VALUE_LENGTH]
    tags = (tag for tag in raw.split() if _LANGUAGE_TAG.match(tag))
    return tuple(dict.fromkeys(tags))[:MAX_UI_LOCALES]


def redirect_with(redirect_uri: str, parameters: Mapping[str, str | None]) -> str:
    """The redirect URI with response parameters added to its query (RFC 6749 4.1.2).

    A query already in the registered URI is kept (RFC 6749 section 3.1.2).
    """
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in parameters.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def error_redirect(error: AuthorizationError, issuer: str) -> str:
    """The error response location, with ``iss`` (RFC 6749 4.1.2.1, RFC 9207 section 2)."""
    return redirect_with(
        error.redirect_uri,
        {
            "error": error.error.error,
            "error_description": error.error.description,
            "state": error.state,
            "iss": issuer,
        },
    )


def code_redirect(request: AuthorizationRequest, code: str, issuer: str) -> str:
    """The successful response location: code, state and iss (RFC 6749 4.1.2, RFC 9207)."""
    return redirect_with(
        request.redirect_uri, {"code": code, "state": request.state, "iss": issuer}
    )
