"""Browser-session operations for administrators: list a user's sessions, end one, end all.

Sessions are named by their public ``sid`` (the one ID tokens and logout tokens carry),
never by what the cookie holds: the store keys a session by the SHA-256 of the cookie's
value, and even that is never shown. Ending a session is what a logout does
(:func:`idp.sso.sessions.end_session`): its session-bound grants end, and every client
that used it and registered a ``backchannel_logout_uri`` is sent a logout token (OpenID
Connect Back-Channel Logout 1.0 section 2.5) through the context's notifier. Each ending
is written to the audit trail (``session.end``, ``session.end_all``) as soon as it is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.admin.context import AdminContext
from idp.admin.users import UserRef, get_user
from idp.sso.sessions import end_session as end_one_session
from idp.sso.sessions import end_user_sessions
from idp.store.base import NotFound, SessionRecord, UserRecord


@dataclass(frozen=True)
class SessionView:
    """A live session and the clients that received tokens through it."""

    session: SessionRecord
    username: str
    client_ids: tuple[str, ...]


async def list_sessions(ctx: AdminContext, user: UserRef) -> tuple[UserRecord, list[SessionView]]:
    """The user's live sessions (not ended, not timed out), newest first; raises NotFound."""
    found = await get_user(ctx, user)
    sessions = await ctx.store.list_user_sessions(found.id, ctx.clock())
    views = [
        SessionView(s, found.username, tuple(await ctx.store.list_session_clients(s.id)))
        for s in sessions
    ]
    return found, views


async def end_session(ctx: AdminContext, sid: str) -> UserRecord:
    """End the live session ``sid`` as a logout does; the user it belonged to.

    Audited as ``session.end`` (target the sid). Raises NotFound when no live session has
    this sid (unknown, ended or timed out).
    """
    missing = NotFound(f"no live session with sid {sid!r}")
    session = await ctx.store.get_session_by_sid(sid)
    if session is None or not session.is_live(ctx.clock()):
        raise missing
    user = await get_user(ctx, UserRef(id=session.user_id))
    if await end_one_session(ctx, session.id) is None:
        raise missing
    detail = {"user_id": user.id, "username": user.username}
    await ctx.store.record_audit(ctx.audit("session.end", sid, detail))
    return user


async def end_all_sessions(ctx: AdminContext, user: UserRef) -> tuple[UserRecord, int]:
    """End every session of the user as a logout does; the user and how many ended.

    Audited as ``session.end_all`` (target the user, with the count) when any ended.
    Refresh tokens not bound to a session (``offline_access``) stay: revoke the consent or
    disable the user to end those. Raises NotFound for an unknown user.
    """
    found = await get_user(ctx, user)
    ended = await end_user_sessions(ctx.store, ctx.clock, found.id, ctx.notifier)
    if ended:
        detail = {"username": found.username, "count": len(ended)}
        await ctx.store.record_audit(ctx.audit("session.end_all", found.id, detail))
    return found, len(ended)
