"""The second-factor form's submission, POST /login/second-factor.

The HTTP floor: opens the sealed pending sign-in (seal, expiry and CSRF checked by
:mod:`idp.http.sealed_forms`, the browser binding by :mod:`idp.http.second_factor_pages`),
calls :func:`idp.sso.second_factor.submit_second_factor` once with the typed code, and
renders its answer (:mod:`idp.http.signin_pages`): the form again (429 when throttled), the
consent form, or the redirect to the client, with the new session's cookie.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import session_cookie, submitted_binding
from idp.http.sealed_forms import FORGED_FORM, FormRejected, open_sealed_form
from idp.http.second_factor_pages import SECOND_FACTOR_PURPOSE, pending_from
from idp.http.services import services
from idp.http.signin_pages import render
from idp.sso.second_factor import submit_second_factor


async def second_factor(request: Request) -> Response:
    """POST /login/second-factor: check the code and finish the pending sign-in."""
    found = services(request)
    form = await open_sealed_form(request, found, SECOND_FACTOR_PURPOSE)
    pending = pending_from(form.document, submitted_binding(request, found.settings))
    if pending is None:
        raise FormRejected(FORGED_FORM, 403)
    outcome = await submit_second_factor(
        found,
        pending,
        code=form.fields.get("code", ""),
        client_address=request.client.host if request.client else "",
        session_cookie=session_cookie(request, found.settings),
    )
    return render(request, found, outcome, sealed=form.sealed)
