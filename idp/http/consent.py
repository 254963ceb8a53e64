"""The consent form's submission, POST /consent (OpenID Connect Core 1.0 section 3.1.2.4).

The HTTP floor: opens the sealed form (:mod:`idp.http.sealed_forms`), calls
:func:`idp.sso.consent.submit_consent` once with the decision and the session cookie, and
renders its answer (:mod:`idp.http.signin_pages`): a redirect to the client or an error page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import session_cookie
from idp.http.sealed_forms import open_sealed_form
from idp.http.services import client_address, services
from idp.http.signin_pages import render
from idp.oauth.authorization import AuthorizationRequest
from idp.sso.consent import submit_consent


async def consent(request: Request) -> Response:
    """POST /consent: remember the user's decision and answer the pending request."""
    found = services(request)
    form = await open_sealed_form(request, found, "consent")
    pending = AuthorizationRequest.from_document(form.document["request"])
    outcome = await submit_consent(
        found,
        pending,
        sid=form.document.get("sid"),
        decision=form.fields.get("decision"),
        session_cookie=session_cookie(request, found.settings),
        client_address=client_address(request),
    )
    return render(request, found, outcome, ui_locales=pending.ui_locales)
