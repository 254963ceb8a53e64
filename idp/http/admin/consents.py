"""Admin API consent endpoints: list consents, revoke one (over idp.admin.consents)."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import consents
from idp.admin.documents import consent_document
from idp.admin.users import UserRef
from idp.http.admin.routing import AdminCall, answer, no_content, read_query
from idp.http.json_body import STRING, Field

QUERY = (
    Field("user_id", STRING, "Only this user's consents (the user's id)."),
    Field("client_id", STRING, "Only consents to this client."),
)


async def list_consents(call: AdminCall) -> Response:
    """List consents users gave clients, oldest first; filter by user_id and client_id."""
    query = read_query(call.request, QUERY)
    user = UserRef(id=query["user_id"]) if "user_id" in query else None
    found = await consents.list_consents(call.admin, user, query.get("client_id"))
    return answer([consent_document(c) for c in found])


async def revoke(call: AdminCall) -> Response:
    """Revoke a user's consent to a client and every refresh token it backed."""
    user = UserRef(id=call.param("user_id"))
    await consents.revoke_consent(call.admin, user, call.param("client_id"))
    return no_content()
