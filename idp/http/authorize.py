"""The authorization endpoint, GET and POST /authorize (RFC 6749 section 3.1, OpenID
Connect Core 1.0 section 3.1.2.1).

The HTTP floor: reads the parameters and the session cookie, calls
:func:`idp.sso.signin.answer_authorization_request` once, and renders its answer
(:mod:`idp.http.signin_pages`): a code at once when a live session suffices, else the
login or consent form, which /login (:mod:`idp.http.login`) and /consent
(:mod:`idp.http.consent`) answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import session_cookie
from idp.http.sealed_forms import page_form
from idp.http.services import services
from idp.http.signin_pages import render
from idp.oauth.authorization import requested_locales
from idp.sso.signin import answer_authorization_request


async def authorize(request: Request) -> Response:
    """GET and POST /authorize: answer from the session, or ask the user to sign in."""
    found = services(request)
    cookie = session_cookie(request, found.settings)
    form = await page_form(request)
    params = form.params
    outcome = await answer_authorization_request(
        found, params, session_cookie=cookie, resources=form.resources
    )
    # An error before anyone signed in is a 302, as most clients expect of /authorize.
    locales = requested_locales(params)
    return render(request, found, outcome, error_status=302, ui_locales=locales)
