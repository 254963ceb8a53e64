"""Admin API client endpoints: register, list, show, change, delete, rotate the secret (over
idp.admin.clients); make, list and revoke initial access tokens (over idp.admin.registration)."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import clients, registration
from idp.admin.context import InvalidInput
from idp.admin.documents import (
    client_document,
    initial_access_token_document,
    initial_access_token_summary_document,
    rotated_secret_document,
)
from idp.config import ConfigError, parse_duration
from idp.http.admin.routing import AdminCall, answer, no_content, read_query
from idp.http.json_body import (
    BOOLEAN,
    POSITIVE_INTEGER,
    STRING,
    STRING_LIST,
    Field,
    read_json,
)
from idp.oauth.registration import ClientRequest, ClientUpdate

_CLIENT_METADATA = (
    Field("redirect_uris", STRING_LIST, "Exact redirect URIs (RFC 6749 section 3.1.2)."),
    Field("post_logout_redirect_uris", STRING_LIST, "Exact post-logout redirect URIs."),
    Field(
        "grant_types",
        STRING_LIST,
        "client_credentials, authorization_code, refresh_token, "
        "urn:ietf:params:oauth:grant-type:device_code, "
        "urn:ietf:params:oauth:grant-type:token-exchange (confidential clients). On creation, "
        "default: authorization_code and refresh_token with redirect_uris, else "
        "client_credentials (public: authorization_code).",
    ),
    Field("scope", STRING, "Space-separated scopes the client may ask for."),
    Field("audiences", STRING_LIST, "Absolute URIs the client may address tokens to."),
    Field(
        "backchannel_logout_uri",
        STRING,
        'Where logout tokens are posted (https, public host; "" removes it on update).',
    ),
    Field(
        "require_mfa",
        BOOLEAN,
        "Every sign-in for this client needs a second factor (acr urn:idp:acr:mfa).",
    ),
    Field(
        "require_par",
        BOOLEAN,
        "Authorization requests only through the pushed authorization request endpoint (RFC 9126).",
    ),
    Field(
        "jwks",
        STRING,
        "private_key_jwt: the client's public keys, a JWK Set as JSON text (each key with kid "
        "and alg). On update, replaces its keys.",
    ),
    Field(
        "jwks_uri",
        STRING,
        "private_key_jwt: the https URL of the client's JWK Set, fetched and cached. On "
        "update, replaces its keys.",
    ),
    Field(
        "require_dpop",
        BOOLEAN,
        "Every token request of this client must carry a DPoP proof (RFC 9449 section 5.2).",
    ),
    Field(
        "token_exchange_subject_clients",
        STRING_LIST,
        "Token exchange (RFC 8693): the client ids whose tokens this client may exchange; "
        "empty: tokens of any client.",
    ),
)
CREATE_FIELDS = (
    Field("name", STRING, "Unique name.", required=True),
    *_CLIENT_METADATA,
    Field("public", BOOLEAN, "A public client (auth method none). Default false."),
    Field(
        "token_endpoint_auth_method",
        STRING,
        "client_secret_basic (default), client_secret_post, client_secret_jwt (HS256 "
        "assertions keyed with the secret), private_key_jwt (with jwks or jwks_uri), or none "
        "for a public client.",
    ),
    Field("access_token_alg", STRING, "RS256 (default) or ES256."),
    Field("id_token_alg", STRING, "RS256 (default) or ES256."),
    Field(
        "admin",
        BOOLEAN,
        "An admin API client: adds scope idp:admin and <issuer>/admin. Machine clients only: "
        "refused with the authorization_code or refresh_token grant.",
    ),
)
UPDATE_FIELDS = (Field("name", STRING, "Unique name."), *_CLIENT_METADATA)
ROTATE_SECRET_FIELDS = (
    Field(
        "keep_old",
        STRING,
        "How long the old secret stays valid beside the new one: 90s, 15m, 24h, 7d (at most "
        "30d). Default 0: it stops working at once.",
    ),
)

REGISTRATION_TOKEN_FIELDS = (
    Field(
        "expires_in",
        STRING,
        "How long the token works: 90s, 15m, 24h, 7d (at most 365d). Default 1d.",
    ),
    Field(
        "uses",
        POSITIVE_INTEGER,
        "How many registrations it allows (1: single use). Default: any until it expires.",
        limit=registration.MAX_INITIAL_TOKEN_USES,
    ),
)

REGISTRATION_TOKEN_QUERY = (
    Field(
        "all",
        BOOLEAN,
        "true: also expired and used-up tokens (housekeeping deletes expired ones). Default false.",
    ),
)


async def list_clients(call: AdminCall) -> Response:
    """List clients (never a secret)."""
    return answer([client_document(c) for c in await clients.list_clients(call.admin)])


async def create(call: AdminCall) -> Response:
    """Register a client; the secret is in this answer only."""
    body = await read_json(call.request, CREATE_FIELDS, optional=False)
    admin = body.pop("admin", False)
    record, secret = await clients.create_client(call.admin, ClientRequest(**body), admin=admin)
    return answer(client_document(record, secret), 201)


async def show(call: AdminCall) -> Response:
    """Show one client."""
    return answer(client_document(await clients.get_client(call.admin, call.param("client_id"))))


async def update(call: AdminCall) -> Response:
    """Change a client's name, redirect URIs, scope, audiences or grant types."""
    body = await read_json(call.request, UPDATE_FIELDS, optional=False)
    client_id = call.param("client_id")
    return answer(
        client_document(await clients.update_client(call.admin, client_id, ClientUpdate(**body)))
    )


async def delete(call: AdminCall) -> Response:
    """Delete a client; its tokens still verify until they expire."""
    await clients.delete_client(call.admin, call.param("client_id"))
    return no_content()


async def rotate_secret(call: AdminCall) -> Response:
    """Give a client a new secret (in this answer only), keeping the old one for keep_old."""
    body = await read_json(call.request, ROTATE_SECRET_FIELDS, optional=True)
    try:
        keep_old = parse_duration("keep_old", body.get("keep_old") or "0", allow_zero=True)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    record, secret = await clients.rotate_client_secret(
        call.admin, call.param("client_id"), keep_old
    )
    return answer(rotated_secret_document(record, secret))


async def registration_token(call: AdminCall) -> Response:
    """Make an initial access token for dynamic client registration (in this answer only)."""
    body = await read_json(call.request, REGISTRATION_TOKEN_FIELDS, optional=True)
    try:
        expires_in = parse_duration("expires_in", body.get("expires_in") or "1d")
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    record, token = await registration.create_initial_access_token(
        call.admin, expires_in, body.get("uses")
    )
    return answer(initial_access_token_document(record, token), 201)


async def registration_tokens(call: AdminCall) -> Response:
    """List initial access tokens that can still register a client (never a token or hash)."""
    query = read_query(call.request, REGISTRATION_TOKEN_QUERY)
    found = await registration.list_initial_access_tokens(call.admin, query.get("all", False))
    return answer([initial_access_token_summary_document(t) for t in found])


async def revoke_registration_token(call: AdminCall) -> Response:
    """Revoke an initial access token: it registers no more clients."""
    await registration.revoke_initial_access_token(call.admin, call.param("token_id"))
    return no_content()
