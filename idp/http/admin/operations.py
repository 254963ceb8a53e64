"""The admin API's one operations table, from which its routes and OpenAPI document are made.

Each group's endpoints live beside their handlers (keys, clients, users, audit); this table
joins them, in the order the OpenAPI document lists them.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from idp.http.admin import audit, clients, keys, users
from idp.http.admin.openapi import openapi_document
from idp.http.admin.routing import AdminCall, Operation, admin_routes
from idp.http.responses import json_response


async def openapi(call: AdminCall) -> Response:
    document = openapi_document(OPERATIONS, call.services.settings.issuer)
    return json_response(document, headers={"Cache-Control": "no-cache"})


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
    *keys.OPERATIONS,
    *clients.OPERATIONS,
    *users.OPERATIONS,
    *audit.OPERATIONS,
)


def routes() -> list[Route]:
    """The admin API's routes, ending with the audited catch-all for unknown paths."""
    return admin_routes(OPERATIONS)
