"""Admin API second-factor endpoints: status, reset, the per-user requirement (over
idp.admin.factors)."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import factors
from idp.admin.documents import mfa_document
from idp.admin.users import UserRef
from idp.http.admin.routing import AdminCall, answer
from idp.http.json_body import BOOLEAN, Field, read_json

REQUIRE_FIELDS = (
    Field("required", BOOLEAN, "Whether every sign-in needs a second factor. Default true."),
)


def _ref(call: AdminCall) -> UserRef:
    return UserRef(id=call.param("user_id"))


async def status(call: AdminCall) -> Response:
    """Show a user's second factors, unused recovery codes, and whether one is required."""
    user, found = await factors.mfa_status(call.admin, _ref(call))
    return answer(mfa_document(user, found))


async def reset(call: AdminCall) -> Response:
    """Remove a user's TOTP credential and recovery codes."""
    user, found, removed = await factors.reset_mfa(call.admin, _ref(call))
    return answer({**mfa_document(user, found), "reset": removed})


async def require(call: AdminCall) -> Response:
    """Require (or, with required false, stop requiring) a second factor for a user."""
    body = await read_json(call.request, REQUIRE_FIELDS, optional=True)
    required = body.get("required", True)
    user, found = await factors.require_mfa(call.admin, _ref(call), required)
    return answer(mfa_document(user, found))
