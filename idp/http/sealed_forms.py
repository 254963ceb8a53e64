"""Browser forms that carry sealed state and a CSRF token bound to the browser.

The form's state (a pending authorization or logout request) is sealed with an HMAC and
sent in the page; the CSRF token is derived from that sealed value and a random value in
this browser's ``idp_browser`` cookie, so a form only works when posted back by the
browser it was shown to (a login-CSRF or forced-logout page elsewhere cannot forge it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import read_form
from idp.http.html import (
    browser_binding,
    error_page,
    page,
    set_browser_binding,
    submitted_binding,
)
from idp.http.services import Services
from idp.oauth.errors import OAuthError

FORM_LIFETIME = 1800
EXPIRED_FORM = "This form has expired or was altered. Start again from the application."
FORGED_FORM = "This form could not be verified. Start again from the application."


def form_page(
    request: Request,
    found: Services,
    template: str,
    sealed: str,
    context: Mapping[str, object],
    form_targets: Sequence[str],
) -> Response:
    """Render a form page holding ``sealed`` and its CSRF token; set the browser cookie."""
    binding, is_new = browser_binding(request, found.settings)
    context = {**context, "sealed": sealed, "csrf": found.sealer.csrf_token(binding, sealed)}
    response = page(template, context, form_targets=form_targets)
    if is_new:
        set_browser_binding(response, found.settings, binding)
    return response


async def open_sealed_form(
    request: Request, found: Services, purpose: str
) -> tuple[Mapping[str, str], str, dict[str, Any]] | Response:
    """The submitted fields, sealed value and its document; an error page if a check fails.

    An altered or expired seal gives 400; a missing or wrong CSRF token (compared in
    constant time) gives 403.
    """
    try:
        form = (await read_form(request)).params
    except OAuthError as exc:
        return error_page(exc.description)
    sealed = form.get("request", "")
    document = found.sealer.unseal(purpose, sealed, found.clock())
    if document is None:
        return error_page(EXPIRED_FORM)
    if not found.sealer.csrf_matches(
        submitted_binding(request, found.settings), sealed, form.get("csrf")
    ):
        return error_page(FORGED_FORM, 403)
    return form, sealed, document
