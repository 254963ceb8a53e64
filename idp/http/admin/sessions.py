"""Admin API session endpoints: list a user's sessions, end one, end all (over
idp.admin.sessions); the server's notifier sends the back-channel logout tokens."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import sessions
from idp.admin.documents import session_document, sessions_ended_document
from idp.admin.users import UserRef
from idp.http.admin.routing import AdminCall, answer, no_content


async def list_sessions(call: AdminCall) -> Response:
    """List a user's live browser sessions, newest first, by their public sid."""
    _, found = await sessions.list_sessions(call.admin, UserRef(id=call.param("user_id")))
    return answer([session_document(s) for s in found])


async def end(call: AdminCall) -> Response:
    """End one session as a logout does; its clients get back-channel logout."""
    await sessions.end_session(call.admin, call.param("sid"))
    return no_content()


async def end_all(call: AdminCall) -> Response:
    """End every session of a user; say how many ended."""
    user, ended = await sessions.end_all_sessions(call.admin, UserRef(id=call.param("user_id")))
    return answer(sessions_ended_document(user, ended))
