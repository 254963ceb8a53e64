"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), GET and POST.

With a valid id_token_hint for the signed-in user the session ends at once; otherwise the
user confirms on a CSRF-protected page, so that no third-party page can sign them out.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import request_params
from idp.http.html import clear_session_cookie, error_page, page, redirect, session_cookie
from idp.http.sealed_forms import FORM_LIFETIME, form_page, open_sealed_form
from idp.http.services import Services, services
from idp.oauth.authorization import redirect_with
from idp.oauth.errors import OAuthError
from idp.oauth.logout import (
    InvalidLogoutRequest,
    LogoutRequest,
    check_logout_client,
    check_post_logout_redirect_uri,
    verify_id_token_hint,
)
from idp.sso.sessions import end_session, resume_session, session_id_of
from idp.store.base import ClientRecord

MAX_VALUE_LENGTH = 8192


async def _check(
    found: Services, params: Mapping[str, str]
) -> tuple[LogoutRequest, ClientRecord | None]:
    if any(len(v) > MAX_VALUE_LENGTH for v in params.values()):
        raise InvalidLogoutRequest("A parameter is too long.")
    raw_hint = params.get("id_token_hint")
    hint = (
        verify_id_token_hint(found.keys.ring, found.settings.issuer, raw_hint) if raw_hint else None
    )
    client_id = check_logout_client(params.get("client_id"), hint)
    client = await found.store.get_client(client_id) if client_id else None
    if client_id is not None and client is None:
        raise InvalidLogoutRequest("The client_id is not a registered client.")
    uri = check_post_logout_redirect_uri(params.get("post_logout_redirect_uri"), client)
    return LogoutRequest(client_id, uri, params.get("state"), hint), client


async def end_session_endpoint(request: Request) -> Response:
    """GET and POST /logout: end the session, or ask the user to confirm first."""
    found = services(request)
    try:
        logout, client = await _check(found, await request_params(request))
    except OAuthError as exc:
        return error_page(exc.description)
    except InvalidLogoutRequest as exc:
        return error_page(str(exc))
    resumed = await resume_session(
        found.store, found.settings, found.clock, session_cookie(request, found.settings)
    )
    if resumed is None:
        return _done(found, logout)
    session, _ = resumed
    if logout.hint is not None and logout.hint.get("sub") == session.user_id:
        await end_session(found.store, found.clock, session.id, found.notifier)
        return _done(found, logout)
    document = {
        "client_id": logout.client_id,
        "post_logout_redirect_uri": logout.post_logout_redirect_uri,
        "state": logout.state,
    }
    sealed = found.sealer.seal("logout", document, found.clock() + FORM_LIFETIME)
    targets = (logout.post_logout_redirect_uri,) if logout.post_logout_redirect_uri else ()
    context = {"client_name": client.name if client else None}
    return form_page(request, found, "logout.html", sealed, context, targets)


async def confirm_logout(request: Request) -> Response:
    """POST /logout/confirm: the user confirmed; end the session and go where asked."""
    found = services(request)
    opened = await open_sealed_form(request, found, "logout")
    if isinstance(opened, Response):
        return opened
    _, _, document = opened
    cookie = session_cookie(request, found.settings)
    if cookie:
        await end_session(found.store, found.clock, session_id_of(cookie), found.notifier)
    logout = LogoutRequest(
        document.get("client_id"),
        document.get("post_logout_redirect_uri"),
        document.get("state"),
        None,
    )
    return _done(found, logout)


def _done(found: Services, logout: LogoutRequest) -> Response:
    """Redirect to the client's post-logout URI with state, or show the signed-out page."""
    response: Response
    if logout.post_logout_redirect_uri:
        response = redirect(redirect_with(logout.post_logout_redirect_uri, {"state": logout.state}))
    else:
        response = page("signed_out.html", {})
    clear_session_cookie(response, found.settings)
    return response
