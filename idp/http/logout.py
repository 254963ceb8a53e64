"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), GET and POST.

The HTTP floor: /logout reads the parameters and the session cookie and calls
:func:`idp.sso.logout.request_logout`; /logout/confirm opens the sealed confirmation form
and calls :func:`idp.sso.logout.confirm_logout`. Each renders the answer: an error page,
the CSRF-protected confirmation page, or the redirect (or signed-out page) that clears the
session cookie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import clear_session_cookie, error_page, page, redirect, session_cookie
from idp.http.sealed_forms import FORM_LIFETIME, form_page, open_sealed_form, page_params
from idp.http.services import Services, services
from idp.oauth.authorization import redirect_with, requested_locales
from idp.oauth.logout import LogoutRequest
from idp.sso.logout import confirm_logout, request_logout
from idp.sso.outcomes import ConfirmLogout, ShowError, SignedOut


async def end_session_endpoint(request: Request) -> Response:
    """GET and POST /logout: end the session, or ask the user to confirm first."""
    found = services(request)
    params = await page_params(request)
    outcome = await request_logout(
        found, params, session_cookie=session_cookie(request, found.settings)
    )
    locales = requested_locales(params)
    match outcome:
        case ShowError():
            return error_page(request, outcome, ui_locales=locales)
        case SignedOut(request=logout):
            return _signed_out(request, found, logout, locales)
        case ConfirmLogout(request=logout, client_name=client_name):
            return _confirm_page(request, found, logout, client_name, params)
        case _:
            assert_never(outcome)


async def confirm_logout_endpoint(request: Request) -> Response:
    """POST /logout/confirm: the user confirmed; end the session and go where asked."""
    found = services(request)
    logout = LogoutRequest.from_document(
        (await open_sealed_form(request, found, "logout")).document
    )
    cookie = session_cookie(request, found.settings)
    done = await confirm_logout(found, logout, session_cookie=cookie)
    return _signed_out(request, found, done.request)


def _confirm_page(
    request: Request,
    found: Services,
    logout: LogoutRequest,
    client_name: str | None,
    params: Mapping[str, str],
) -> Response:
    """The confirmation form, carrying the request sealed (without its hint)."""
    sealed = found.sealer.seal("logout", logout.to_document(), found.clock() + FORM_LIFETIME)
    targets = (logout.post_logout_redirect_uri,) if logout.post_logout_redirect_uri else ()
    context = {"client_name": client_name}
    locales = requested_locales(params)
    return form_page(request, found, "logout.html", sealed, context, targets, ui_locales=locales)


def _signed_out(
    request: Request, found: Services, logout: LogoutRequest, ui_locales: Sequence[str] = ()
) -> Response:
    """Redirect to the client's post-logout URI with state, or show the signed-out page."""
    response: Response
    if logout.post_logout_redirect_uri:
        response = redirect(redirect_with(logout.post_logout_redirect_uri, {"state": logout.state}))
    else:
        response = page(request, "signed_out.html", {}, ui_locales=ui_locales)
    clear_session_cookie(response, found.settings)
    return response
