"""The admin API's one operations table, from which its routes and OpenAPI document are made.

The handlers live with their group (keys, clients, users, consents, sessions, audit); each
row here says how an operation is called, what it answers and how it can be refused. The
summary in the OpenAPI document is the first line of the handler's docstring.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from idp.http.admin import audit, clients, consents, factors, keys, sessions, users
from idp.http.admin.openapi import openapi_document
from idp.http.admin.routing import (
    ONE_ERRORS,
    AdminCall,
    Operation,
    admin_routes,
    changing,
    creating,
)
from idp.http.responses import json_response


async def openapi(call: AdminCall) -> Response:
    """This description of the admin API (OpenAPI 3.1); no token needed."""
    document = openapi_document(OPERATIONS, call.services.settings.issuer)
    return json_response(document, headers={"Cache-Control": "no-cache"})


KEY = "/admin/keys/{kid}"
CLIENT = "/admin/clients/{client_id}"
USER = "/admin/users/{user_id}"
CLASHING_ONE = (*ONE_ERRORS, 409)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/admin/openapi.json",
        "admin.openapi",
        openapi,
        "OpenAPI",
        errors=(),
        authenticated=False,
    ),
    Operation("GET", "/admin/keys", "key.list", keys.list_keys, "Keys"),
    Operation("GET", "/admin/keys/status", "key.status", keys.ring_status, "RingStatuses"),
    Operation(
        "POST",
        "/admin/keys/rotate",
        "key.rotate",
        keys.rotate,
        "Rotations",
        body=keys.ROTATE_FIELDS,
        body_required=False,
    ),
    creating("/admin/keys/import", "key.import", keys.import_pem, "Key", keys.IMPORT_FIELDS),
    Operation("POST", f"{KEY}/revoke", "key.revoke", keys.revoke, "Key", errors=CLASHING_ONE),
    Operation("GET", "/admin/clients", "client.list", clients.list_clients, "Clients"),
    creating("/admin/clients", "client.create", clients.create, "Client", clients.CREATE_FIELDS),
    Operation("GET", CLIENT, "client.show", clients.show, "Client", errors=ONE_ERRORS),
    changing(
        CLIENT, "client.update", clients.update, "Client", clients.UPDATE_FIELDS, CLASHING_ONE
    ),
    Operation("DELETE", CLIENT, "client.delete", clients.delete, status=204, errors=ONE_ERRORS),
    Operation(
        "POST",
        f"{CLIENT}/secret",
        "client.rotate_secret",
        clients.rotate_secret,
        "ClientSecret",
        body=clients.ROTATE_SECRET_FIELDS,
        body_required=False,
        errors=ONE_ERRORS,
    ),
    Operation(
        "POST",
        "/admin/registration-tokens",
        "client.registration_token",
        clients.registration_token,
        "InitialAccessToken",
        201,
        clients.REGISTRATION_TOKEN_FIELDS,
        body_required=False,
    ),
    Operation(
        "GET",
        "/admin/registration-tokens",
        "client.registration_token.list",
        clients.registration_tokens,
        "InitialAccessTokenSummaries",
        query=clients.REGISTRATION_TOKEN_QUERY,
    ),
    Operation(
        "DELETE",
        "/admin/registration-tokens/{token_id}",
        "client.registration_token.revoke",
        clients.revoke_registration_token,
        status=204,
        errors=ONE_ERRORS,
    ),
    Operation("GET", "/admin/users", "user.list", users.list_users, "Users"),
    creating("/admin/users", "user.create", users.create, "User", users.CREATE_FIELDS),
    Operation("GET", USER, "user.show", users.show, "User", errors=ONE_ERRORS),
    changing(USER, "user.update", users.update, "User", users.UPDATE_FIELDS, ONE_ERRORS),
    Operation(
        "POST", f"{USER}/disable", "user.disable", users.disable, "DisabledUser", errors=ONE_ERRORS
    ),
    Operation("POST", f"{USER}/unlock", "user.unlock", users.unlock, "Unlocked", errors=ONE_ERRORS),
    Operation("DELETE", USER, "user.delete", users.delete, status=204, errors=ONE_ERRORS),
    Operation("GET", f"{USER}/mfa", "user.mfa", factors.status, "MfaStatus", errors=ONE_ERRORS),
    Operation(
        "POST", f"{USER}/mfa/reset", "user.mfa_reset", factors.reset, "MfaReset", errors=ONE_ERRORS
    ),
    Operation(
        "POST",
        f"{USER}/require-mfa",
        "user.require_mfa",
        factors.require,
        "MfaStatus",
        body=factors.REQUIRE_FIELDS,
        body_required=False,
        errors=ONE_ERRORS,
    ),
    Operation(
        "GET",
        "/admin/consents",
        "consent.list",
        consents.list_consents,
        "Consents",
        errors=ONE_ERRORS,
        query=consents.QUERY,
    ),
    Operation(
        "DELETE",
        "/admin/consents/{user_id}/{client_id}",
        "consent.revoke",
        consents.revoke,
        status=204,
        errors=ONE_ERRORS,
    ),
    Operation(
        "GET",
        f"{USER}/sessions",
        "session.list",
        sessions.list_sessions,
        "Sessions",
        errors=ONE_ERRORS,
    ),
    Operation(
        "DELETE",
        f"{USER}/sessions",
        "session.end_all",
        sessions.end_all,
        "SessionsEnded",
        errors=ONE_ERRORS,
    ),
    Operation(
        "DELETE",
        "/admin/sessions/{sid}",
        "session.end",
        sessions.end,
        status=204,
        errors=ONE_ERRORS,
    ),
    Operation(
        "GET", "/admin/audit", "audit.list", audit.list_audit, "AuditPage", query=audit.QUERY
    ),
)


def routes() -> list[Route]:
    """The admin API's routes, ending with the audited catch-all for unknown paths."""
    return admin_routes(OPERATIONS)
