"""The admin API: keys, clients and users over JSON, for tokens with the ``idp:admin`` scope.

Each operation is one entry of ``OPERATIONS`` (method, path, body fields, answers), from
which both the routes and the OpenAPI document are made. The work itself is done by the
functions the CLI uses too (idp/management.py, idp/keyring/admin.py), as ``admin:<client_id>``.
Every refused call (401, 403, 4xx) is written to the audit trail with outcome ``failure``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.http.admin_openapi import openapi_document
from idp.http.json_body import BOOLEAN, NULLABLE_STRING, STRING, STRING_LIST, Field, read_json
from idp.http.responses import NO_STORE, json_response, oauth_error_response
from idp.http.services import Services, services
from idp.keyring.admin import revoke_key, rotate_now
from idp.keyring.lifecycle import KeyRingError
from idp.management import (
    InvalidUser,
    UserUpdate,
    client_document,
    create_client,
    create_user,
    delete_client,
    delete_user,
    get_client,
    get_user,
    key_document,
    update_client,
    update_user,
    user_document,
)
from idp.oauth.bearer import (
    BearerError,
    InvalidToken,
    VerifiedToken,
    bearer_token,
    require_scope,
    verify_access_token,
)
from idp.oauth.errors import InvalidRequest, OAuthError
from idp.oauth.registration import (
    ADMIN_SCOPE,
    ClientRequest,
    ClientUpdate,
    InvalidClientMetadata,
    admin_audience,
    admin_client_request,
)
from idp.store.base import AuditEntry, Conflict, NotFound, StoreUnavailable

log = logging.getLogger("idp.admin")

ANONYMOUS = "anonymous"
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_AUDITED_PATH = 200


class AdminError(OAuthError):
    """A refused admin call that is not about the token: unknown id, clash, bad metadata."""

    def __init__(self, error: str, status: int, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class AdminCall:
    """One authenticated admin request: the request, the services, and who is calling."""

    request: Request
    services: Services
    actor: str

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value


Handler = Callable[[AdminCall], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One admin endpoint: how to call it, what it does, what it answers."""

    method: str
    path: str
    action: str
    summary: str
    handler: Handler
    status: int = 200
    response: str | None = None
    body: tuple[Field, ...] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = (400, 401, 403)
    authenticated: bool = True


def _answer(document: Any, status: int = 200) -> Response:
    return json_response(document, status, dict(NO_STORE))


# -- authentication -----------------------------------------------------------------------


async def authenticate(request: Request, found: Services) -> VerifiedToken:
    """Accept only our own access tokens for the admin audience carrying ``idp:admin``.

    The token's client must still exist and still hold the scope, so deleting an admin
    client (or taking the scope away) shuts its unexpired tokens out at once.
    """
    token = bearer_token(request.headers.getlist("authorization"))
    issuer = found.settings.issuer
    verified = verify_access_token(
        token,
        found.keys.ring.verification,
        issuer=issuer,
        audience=admin_audience(issuer),
        now=found.clock(),
    )
    require_scope(verified, ADMIN_SCOPE)
    client = await found.store.get_client(verified.client_id)
    if client is None:
        raise InvalidToken("the token's client no longer exists", client_id=verified.client_id)
    if ADMIN_SCOPE not in client.scope:
        raise InvalidToken(
            f"the token's client no longer holds the scope {ADMIN_SCOPE}",
            client_id=verified.client_id,
        )
    return verified


def _as_protocol_error(exc: Exception) -> OAuthError | None:
    """The error answer for an exception a handler may raise; None if it is unexpected."""
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, NotFound):
        return AdminError("not_found", 404, str(exc))
    if isinstance(exc, Conflict):
        return AdminError("conflict", 409, str(exc))
    if isinstance(exc, KeyRingError):
        return AdminError("conflict", 409, str(exc))
    if isinstance(exc, InvalidClientMetadata):
        return AdminError("invalid_client_metadata", 400, str(exc))
    if isinstance(exc, InvalidUser):
        return AdminError("invalid_request", 400, str(exc))
    return None


async def _record_failure(
    found: Services, request: Request, actor: str, action: str, target: str, error: OAuthError
) -> None:
    """Write the refused call to the audit trail (never the token); a store outage is logged."""
    entry = AuditEntry(
        found.clock(),
        actor,
        action,
        target,
        "failure",
        detail={
            "method": request.method,
            "path": request.url.path[:MAX_AUDITED_PATH],
            "status": error.status,
            "error": error.error,
        },
    )
    try:
        await found.store.record_audit(entry)
    except StoreUnavailable as exc:
        log.warning("could not audit a refused admin call (%s %s): %s", action, target, exc)


def _target(operation_path: str, request: Request) -> str:
    for name in ("kid", "client_id", "user_id"):
        if name in request.path_params:
            return str(request.path_params[name])[:MAX_AUDITED_PATH]
    return operation_path.rsplit("/", 1)[-1] or "admin"


def endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for an operation: authenticate, run, answer, audit refusals."""

    async def run(request: Request) -> Response:
        found = services(request)
        actor = ANONYMOUS
        try:
            if operation.authenticated:
                verified = await authenticate(request, found)
                actor = f"admin:{verified.client_id}"
            return await operation.handler(AdminCall(request, found, actor))
        except Exception as exc:
            error = _as_protocol_error(exc)
            if error is None:
                raise
            if isinstance(error, BearerError) and error.client_id:
                actor = f"admin:{error.client_id}"
            target = _target(operation.path, request)
            await _record_failure(found, request, actor, operation.action, target, error)
            return oauth_error_response(error)

    run.__name__ = operation.action.replace(".", "_")
    return run


# -- keys ---------------------------------------------------------------------------------

ROTATE_FIELDS = (Field("alg", STRING, "Rotate only this algorithm's ring (default: all)."),)


async def list_keys(call: AdminCall) -> Response:
    return _answer([key_document(k) for k in await call.services.store.list_keys()])


async def rotate(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, ROTATE_FIELDS, optional=True)
    algs = list(found.settings.signing_algs)
    if "alg" in body:
        if body["alg"] not in algs:
            raise InvalidRequest(f"alg must be one of {', '.join(algs)}")
        algs = [body["alg"]]
    rotations = await rotate_now(found.store, found.settings, algs, found.clock, call.actor)
    await found.keys.refresh_if_changed()
    return _answer(
        [
            {
                "alg": r.alg,
                "active_kid": r.active_kid,
                "retired_kid": r.retired_kid,
                "next_kid": r.next_kid,
            }
            for r in rotations
        ]
    )


async def revoke(call: AdminCall) -> Response:
    found = call.services
    record = await revoke_key(
        found.store, found.settings, call.param("kid"), found.clock, call.actor
    )
    await found.keys.refresh_if_changed()
    return _answer(key_document(record))


# -- clients ------------------------------------------------------------------------------

_CLIENT_METADATA = (
    Field("redirect_uris", STRING_LIST, "Exact redirect URIs (RFC 6749 section 3.1.2)."),
    Field("post_logout_redirect_uris", STRING_LIST, "Exact post-logout redirect URIs."),
    Field("grant_types", STRING_LIST, "client_credentials, authorization_code, refresh_token."),
    Field("scope", STRING, "Space-separated scopes the client may ask for."),
    Field("audiences", STRING_LIST, "Absolute URIs the client may address tokens to."),
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
    Field("admin", BOOLEAN, "An admin API client: adds scope idp:admin and <issuer>/admin."),
)
CLIENT_UPDATE_FIELDS = (Field("name", STRING, "Unique name."), *_CLIENT_METADATA)


async def list_clients(call: AdminCall) -> Response:
    return _answer([client_document(c) for c in await call.services.store.list_clients()])


async def create_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, CLIENT_CREATE_FIELDS, optional=False)
    admin = body.pop("admin", False)
    request = ClientRequest(**body)
    if admin:
        request = admin_client_request(request, found.settings.issuer)
    record, secret = await create_client(found.store, request, found.clock, call.actor)
    return _answer(client_document(record, secret), 201)


async def show_client(call: AdminCall) -> Response:
    return _answer(client_document(await get_client(call.services.store, call.param("client_id"))))


async def update_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, CLIENT_UPDATE_FIELDS, optional=False)
    record = await update_client(
        found.store, call.param("client_id"), ClientUpdate(**body), found.clock, call.actor
    )
    return _answer(client_document(record))


async def delete_client_endpoint(call: AdminCall) -> Response:
    found = call.services
    await delete_client(found.store, call.param("client_id"), found.clock, call.actor)
    return Response(status_code=204, headers=dict(NO_STORE))


# -- users --------------------------------------------------------------------------------

USER_CREATE_FIELDS = (
    Field("username", STRING, "Unique login name, no spaces.", required=True),
    Field("password", STRING, "Stored only as an argon2id hash; never returned.", required=True),
    Field("email", NULLABLE_STRING, "Email address."),
    Field("name", NULLABLE_STRING, "Display name."),
)
USER_UPDATE_FIELDS = (
    Field("email", NULLABLE_STRING, "Email address (null clears it)."),
    Field("name", NULLABLE_STRING, "Display name (null clears it)."),
    Field("disabled", BOOLEAN, "A disabled user cannot sign in."),
    Field("password", STRING, "A new password, stored as an argon2id hash."),
)


async def list_users(call: AdminCall) -> Response:
    return _answer([user_document(u) for u in await call.services.store.list_users()])


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
    )
    return _answer(user_document(user), 201)


async def show_user(call: AdminCall) -> Response:
    return _answer(user_document(await get_user(call.services.store, call.param("user_id"))))


async def update_user_endpoint(call: AdminCall) -> Response:
    found = call.services
    body = await read_json(call.request, USER_UPDATE_FIELDS, optional=False)
    update = UserUpdate(**body)
    user = await update_user(found.store, call.param("user_id"), update, found.clock, call.actor)
    return _answer(user_document(user))


async def delete_user_endpoint(call: AdminCall) -> Response:
    found = call.services
    await delete_user(found.store, call.param("user_id"), found.clock, call.actor)
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


def _fallback(routes: Sequence[Route]) -> Callable[[Request], Awaitable[Response]]:
    """Unknown admin paths and methods: authenticated and audited like the rest, then 404/405."""

    async def unknown(call: AdminCall) -> Response:
        scope = call.request.scope
        allowed: set[str] = set()
        for route in routes:
            if route.path_regex.match(scope["path"]) and route.methods:
                allowed |= route.methods
        if allowed:
            raise _MethodNotAllowed(sorted(allowed))
        raise AdminError("not_found", 404, "no such admin endpoint")

    operation = Operation("*", "/admin", "admin.request", "", unknown)
    return endpoint(operation)


class _MethodNotAllowed(AdminError):
    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("method_not_allowed", 405, "method not allowed")
        self.headers = {"Allow": ", ".join(allowed)}


def admin_routes(operations: Sequence[Operation] = OPERATIONS) -> list[Route]:
    """The Starlette routes of the admin API, ending with the audited catch-all."""
    grouped: dict[str, list[Operation]] = {}
    for operation in operations:
        grouped.setdefault(operation.path, []).append(operation)
    routes: list[Route] = []
    for path, group in grouped.items():
        by_method: Mapping[str, Callable[[Request], Awaitable[Response]]] = {
            op.method: endpoint(op) for op in group
        }
        routes.append(Route(path, _dispatch(by_method), methods=list(by_method)))
    known = list(routes)
    routes.append(Route("/admin/{rest:path}", _fallback(known), methods=ANY_METHOD))
    routes.append(Route("/admin", _fallback(known), methods=ANY_METHOD))
    return routes


def _dispatch(
    by_method: Mapping[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return dispatch
