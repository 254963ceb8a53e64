"""The login form's submission, POST /login.

The HTTP floor: opens the sealed form (CSRF and seal checked by
:mod:`idp.http.sealed_forms`), calls :func:`idp.sso.signin.sign_in` once with the typed
username and password, the client address and the session cookie, and renders its answer
(:mod:`idp.http.signin_pages`): the form again, 429 when throttled, the consent form, or
the redirect to the client, with the new session's cookie.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import session_cookie
from idp.http.sealed_forms import open_sealed_form
from idp.http.services import client_address, services
from idp.http.signin_pages import render
from idp.oauth.authorization import AuthorizationRequest
from idp.sso.signin import sign_in


async def login(request: Request) -> Response:
    """POST /login: sign in for the pending authorization request the form carries."""
    found = services(request)
    form = await open_sealed_form(request, found, "login")
    pending = AuthorizationRequest.from_document(form.document)
    outcome = await sign_in(
        found,
        pending,
        username=form.fields.get("username", ""),
        password=form.fields.get("password", ""),
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    return render(request, found, outcome, sealed=form.sealed, ui_locales=pending.ui_locales)
