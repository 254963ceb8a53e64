"""Ending a session at a client's request (OpenID Connect RP-Initiated Logout 1.0).

With a valid id_token_hint for the signed-in user the session ends at once; otherwise the
user must confirm on a page of ours first, so that no third-party page can sign them out
(section 2). Either way the browser ends up at the client's registered post-logout URI,
or on our signed-out page.

A service of the sso floor: the /logout and /logout/confirm handlers (``idp.http.logout``)
call it and render its answer; it checks the request with :mod:`idp.oauth.logout` and
ends sessions through :mod:`idp.sso.sessions` (grants revoked, back-channel logout sent).
"""

from __future__ import annotations

from collections.abc import Mapping

from idp.oauth.errors import OAuthError
from idp.oauth.logout import InvalidLogoutRequest, LogoutRequest, check_logout_request
from idp.sso.outcomes import (
    ConfirmLogout,
    LogoutOutcome,
    ShowError,
    SignedOut,
    SignInServices,
)
from idp.sso.sessions import end_session, resume_session, session_id_of
from idp.sso.text import N_

BAD_LOGOUT = N_(
    "The application asked to sign you out, but the request it sent is not valid, so "
    "nothing was changed."
)


async def request_logout(
    services: SignInServices, params: Mapping[str, str], *, session_cookie: str | None
) -> LogoutOutcome:
    """Check a logout request; end the session at once if the hint names its user."""
    try:
        logout, client = await check_logout_request(
            params, services.store, services.keys.ring, services.settings.issuer
        )
    except OAuthError as exc:
        return ShowError(BAD_LOGOUT, exc.error, exc.description)
    except InvalidLogoutRequest as exc:
        return ShowError(BAD_LOGOUT, "invalid_request", str(exc))
    resumed = await resume_session(
        services.store, services.settings, services.clock, session_cookie
    )
    if resumed is None:
        return SignedOut(logout)
    session, _ = resumed
    if logout.hint is not None and logout.hint.get("sub") == session.user_id:
        await end_session(services, session.id)
        return SignedOut(logout)
    return ConfirmLogout(logout, client.name if client else None)


async def confirm_logout(
    services: SignInServices, logout: LogoutRequest, *, session_cookie: str | None
) -> SignedOut:
    """The user confirmed: end the browser's session, if it has one, and go where asked."""
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    return SignedOut(logout)
