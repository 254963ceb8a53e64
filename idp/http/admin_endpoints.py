"""The admin API's endpoints: keys, clients and users over JSON, for ``idp:admin`` tokens.

Each endpoint is one entry of ``OPERATIONS``. The work is done by the functions the CLI uses
too (idp/management.py, idp/keyring/admin.py), acting as ``admin:<client_id>``, so every
change is audited in the same transaction as the change itself.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from idp.http.admin import AdminCall, Operation, admin_routes, answer
from idp.http.admin_openapi import openapi_document
from idp.http.json_body import BOOLEAN, NULLABLE_STRING, STRING, STRING_LIST, Field, read_json
from idp.http.responses import NO_STORE, json_response
from idp.keyring.admin import revoke_key, rotate_now
from idp.management import (
    UserUpdate,
    client_document,
    create_client,
    create_user,
    delete_client,
    delete_user,
    end_user_access,
    get_client,
    get_user,
    key_document,
    rotation_document,
    update_client,
    update_user,
    user_document,
)
from idp.oauth.errors import InvalidRequest
from idp.oauth.registration import ClientRequest, ClientUpdate, admin_client_request
from idp.oauth.uris import backchannel_rules

# -- keys ---------------------------------------------------------------------------------

ROTATE_FIELDS = (Field("alg", STRING, "Rotate only this algorithm's ring (default: all)."),)


async def list_keys(call: AdminCall) -> Response:
    return answer([key_document(k) for k in await call.services.store.list_keys()])


async def rotate(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, ROTATE_FIELDS, optional=True)
    algs = list(found.settings.signing_algs)
    if "alg" in body:
        if body["alg"] not in algs:
            raise InvalidRequest(f"alg must be one of {', '.join(algs)}")
        algs = [body["alg"]]
    rotations = await rotate_now(
        found.store, found.settings, algs, found.clock, call.actor, call.subject
    )
    await found.keys.refresh_if_changed()
    return answer([rotation_document(r) for r in rotations])


async def revoke(call: AdminCall) -> Response:
    found = call.services
    record = await revoke_key(
        found.store, found.settings, call.param("kid"), found.clock, call.actor, call.subject
    )
    await found.keys.refresh_if_changed()
    return answer(key_document(record))


# -- clients ------------------------------------------------------------------------------

_CLIENT_METADATA = (
    Field("redirect_uris", STRING_LIST, "Exact redirect URIs (RFC 6749 section 3.1.2)."),
    Field("post_logout_redirect_uris", STRING_LIST, "Exact post-logout redirect URIs."),
    Field("grant_types", STRING_LIST, "client_credentials, authorization_code, refresh_token."),
    Field("scope", STRING, "Space-separated scopes the client may ask for."),
    Field("audiences", STRING_LIST, "Absolute URIs the client may address tokens to."),
    Field(
        "backchannel_logout_uri",
        STRING,
        'Where logout tokens are posted (https, public host; "" removes it on update).',
    ),
)
CLIENT_CREATE_FIELDS = (
    Field("name", STRING, "Unique name.", required=True),
    *_CLIENT_METADATA,
    Field("public", BOOLEAN, "A public client (auth method none). Default false."),
    Field(
        "token_endpoint_auth_method",
        STRING,
        "client_secret_basic (default), client_secret_post, or none for a public client.",
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
CLIENT_UPDATE_FIELDS = (Field("name", STRING, "Unique name."), *_CLIENT_METADATA)


async def list_clients(call: AdminCall) -> Response:
    return answer([client_document(c) for c in await call.services.store.list_clients()])


async def create_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, CLIENT_CREATE_FIELDS, optional=False)
    admin = body.pop("admin", False)
    request = ClientRequest(**body)
    if admin:
        request = admin_client_request(request, found.settings.issuer)
    record, secret = await create_client(
        found.store,
        request,
        found.clock,
        call.actor,
        backchannel_rules(found.settings),
        call.subject,
    )
    return answer(client_document(record, secret), 201)


async def show_client(call: AdminCall) -> Response:
    return answer(client_document(await get_client(call.services.store, call.param("client_id"))))


async def update_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, CLIENT_UPDATE_FIELDS, optional=False)
    record = await update_client(
        found.store,
        call.param("client_id"),
        ClientUpdate(**body),
        found.clock,
        call.actor,
        backchannel_rules(found.settings),
        call.subject,
    )
    return answer(client_document(record))


async def delete_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    await delete_client(found.store, call.param("client_id"), found.clock, call.actor, call.subject)
    return Response(status_code=204, headers=dict(NO_STORE))


# -- users --------------------------------------------------------------------------------

USER_CREATE_FIELDS = (
    Field(
        "username",
        STRING,
        "Unique login name (compared case-insensitively, NFKC); no spaces, control, format or "
        "zero-width characters.",
        required=True,
    ),
    Field(
        "password",
        STRING,
        "At least IDP_PASSWORD_MIN_LENGTH characters; stored only as an argon2id hash.",
        required=True,
    ),
    Field("email", NULLABLE_STRING, "Email address."),
    Field("name", NULLABLE_STRING, "Display name."),
)
USER_UPDATE_FIELDS = (
    Field("email", NULLABLE_STRING, "Email address (null clears it)."),
    Field("name", NULLABLE_STRING, "Display name (null clears it)."),
    Field("disabled", BOOLEAN, "A disabled user cannot sign in."),
    Field(
        "password",
        STRING,
        "A new password of at least IDP_PASSWORD_MIN_LENGTH characters (argon2id hash).",
    ),
)


async def list_users(call: AdminCall) -> Response:
    return answer([user_document(u) for u in await call.services.store.list_users()])


async def create_user_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, USER_CREATE_FIELDS, optional=False)
    user = await create_user(
        found.store,
        body["username"],
        body["password"],
        email=body.get("email"),
        name=body.get("name"),
        clock=found.clock,
        actor=call.actor,
        hasher=found.passwords.hash,
        subject=call.subject,
        password_min_length=found.settings.password_min_length,
    )
    return answer(user_document(user), 201)


async def show_user(call: AdminCall) -> Response:
    return answer(user_document(await get_user(call.services.store, call.param("user_id"))))


async def update_user_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, USER_UPDATE_FIELDS, optional=False)
    update = UserUpdate(**body)
    user = await update_user(
        found.store,
        call.param("user_id"),
        update,
        found.clock,
        call.actor,
        hasher=found.passwords.hash,
        notifier=found.notifier,
        subject=call.subject,
        password_min_length=found.settings.password_min_length,
    )
    return answer(user_document(user))


async def delete_user_endpoint(call: AdminCall) -> Response:
    found = call.services
    user = await get_user(found.store, call.param("user_id"))
    await end_user_access(found.store, user.id, found.clock, found.notifier)
    await delete_user(found.store, user.id, found.clock, call.actor, call.subject)
    return Response(status_code=204, headers=dict(NO_STORE))


# -- the description ----------------------------------------------------------------------


async def openapi(call: AdminCall) -> Response:
    document = openapi_document(OPERATIONS, call.services.settings.issuer)
    return json_response(document, headers={"Cache-Control": "no-cache"})


# -- the table ----------------------------------------------------------------------------

_ID_ERRORS = (400, 401, 403, 404)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/admin/openapi.json",
        "admin.openapi",
        "This description of the admin API (OpenAPI 3.1); no token needed.",
        openapi,
        response="OpenAPI",
        errors=(),
        authenticated=False,
    ),
    Operation("GET", "/admin/keys", "key.list", "List every key.", list_keys, response="Keys"),
    Operation(
        "POST",
        "/admin/keys/rotate",
        "key.rotate",
        "Rotate now: next becomes active, active becomes retired, a new next is made.",
        rotate,
        response="Rotations",
        body=ROTATE_FIELDS,
        body_required=False,
    ),
    Operation(
        "POST",
        "/admin/keys/{kid}/revoke",
        "key.revoke",
        "Revoke a key at once: out of JWKS and signing; an active key is replaced.",
        revoke,
        response="Key",
        errors=(*_ID_ERRORS, 409),
    ),
    Operation(
        "GET", "/admin/clients", "client.list", "List clients.", list_clients, response="Clients"
    ),
    Operation(
        "POST",
        "/admin/clients",
        "client.create",
        "Register a client; the secret is in this answer only.",
        create_client_endpoint,
        status=201,
        response="Client",
        body=CLIENT_CREATE_FIELDS,
        errors=(400, 401, 403, 409),
    ),
    Operation(
        "GET",
        "/admin/clients/{client_id}",
        "client.show",
        "Show one client.",
        show_client,
        response="Client",
        errors=_ID_ERRORS,
    ),
    Operation(
        "PATCH",
        "/admin/clients/{client_id}",
        "client.update",
        "Change a client's name, redirect URIs, scope, audiences or grant types.",
        update_client_endpoint,
        response="Client",
        body=CLIENT_UPDATE_FIELDS,
        errors=(*_ID_ERRORS, 409),
    ),
    Operation(
        "DELETE",
        "/admin/clients/{client_id}",
        "client.delete",
        "Delete a client; its tokens still verify until they expire.",
        delete_client_endpoint,
        status=204,
        errors=_ID_ERRORS,
    ),
    Operation("GET", "/admin/users", "user.list", "List users.", list_users, response="Users"),
    Operation(
        "POST",
        "/admin/users",
        "user.create",
        "Create a user (the password is hashed with argon2id, never returned).",
        create_user_endpoint,
        status=201,
        response="User",
        body=USER_CREATE_FIELDS,
        errors=(400, 401, 403, 409),
    ),
    Operation(
        "GET",
        "/admin/users/{user_id}",
        "user.show",
        "Show one user.",
        show_user,
        response="User",
        errors=_ID_ERRORS,
    ),
    Operation(
        "PATCH",
        "/admin/users/{user_id}",
        "user.update",
        "Change a user's email, name, disabled flag or password.",
        update_user_endpoint,
        response="User",
        body=USER_UPDATE_FIELDS,
        errors=_ID_ERRORS,
    ),
    Operation(
        "DELETE",
        "/admin/users/{user_id}",
        "user.delete",
        "Delete a user.",
        delete_user_endpoint,
        status=204,
        errors=_ID_ERRORS,
    ),
)


def routes() -> list[Route]:
    """The admin API's routes, ending with the audited catch-all for unknown paths."""
    return admin_routes(OPERATIONS)
