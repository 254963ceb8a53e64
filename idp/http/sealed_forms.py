"""Browser forms that carry sealed state and a CSRF token bound to the browser.

The form's state (a pending authorization or logout request) is sealed with an HMAC and
sent in the page; the CSRF token is derived from that sealed value and a random value in
this browser's ``idp_browser`` cookie, so a form only works when posted back by the
browser it was shown to (a login-CSRF or forced-logout page elsewhere cannot forge it).

HTTP plumbing for the pages a browser submits (authorize, login, consent, logout): a
request or form that fails a check raises :class:`FormRejected`, which the app renders as
an error page in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import read_form, request_form
from idp.http.html import (
    browser_binding,
    error_page,
    page,
    set_browser_binding,
    submitted_binding,
)
from idp.http.services import Services
from idp.oauth.errors import OAuthError
from idp.oauth.grants.base import TokenRequest
from idp.sso.outcomes import ShowError
from idp.sso.text import N_

FORM_LIFETIME = 1800
EXPIRED_FORM = N_("This form has expired or was altered. Start again from the application.")
FORGED_FORM = N_("This form could not be verified. Start again from the application.")
UNREADABLE = N_("This page was sent in a form we cannot read.")


def form_page(
    request: Request,
    found: Services,
    template: str,
    sealed: str,
    context: Mapping[str, object],
    form_targets: Sequence[str],
    *,
    status: int = 200,
    scripts: bool = False,
    ui_locales: Sequence[str] = (),
) -> Response:
    """Render a form page holding ``sealed`` and its CSRF token; set the browser cookie.

    ``ui_locales``: the pending request's preferred languages (see ``html.page``)."""
    binding, is_new = browser_binding(request, found.settings)
    context = {**context, "sealed": sealed, "csrf": found.sealer.csrf_token(binding, sealed)}
    response = page(
        request, template, context, status, form_targets, scripts=scripts, ui_locales=ui_locales
    )
    if is_new:
        set_browser_binding(response, found.settings, binding)
    return response


class FormRejected(Exception):
    """A submitted form cannot be trusted or read: show ``message`` with ``status``, and
    the technical ``detail`` small beneath it."""

    def __init__(self, message: str, status: int = 400, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SealedForm:
    """A form that passed its checks: the fields, the sealed value and what it sealed."""

    fields: Mapping[str, str]
    sealed: str
    document: dict[str, Any]


async def open_sealed_form(request: Request, found: Services, purpose: str) -> SealedForm:
    """The submitted form with its sealed document; :class:`FormRejected` if a check fails.

    An unreadable form or an altered or expired seal gives 400; a missing or wrong CSRF
    token (compared in constant time) gives 403.
    """
    try:
        fields = (await read_form(request)).params
    except OAuthError as exc:
        raise FormRejected(UNREADABLE, detail=exc.description) from None
    sealed = fields.get("request", "")
    document = found.sealer.unseal(purpose, sealed, found.clock())
    if document is None:
        raise FormRejected(EXPIRED_FORM)
    if not found.sealer.csrf_matches(
        submitted_binding(request, found.settings), sealed, fields.get("csrf")
    ):
        raise FormRejected(FORGED_FORM, 403)
    return SealedForm(fields, sealed, document)


async def page_form(request: Request) -> TokenRequest:
    """A browser request's parameters and its ``resource`` values (RFC 8707);
    :class:`FormRejected` (an error page) if unreadable."""
    try:
        return await request_form(request)
    except OAuthError as exc:
        raise FormRejected(UNREADABLE, detail=exc.description) from None


async def page_params(request: Request) -> Mapping[str, str]:
    """A browser request's parameters; :class:`FormRejected` (an error page) if unreadable."""
    return (await page_form(request)).params


async def form_rejected(request: Request, exc: Exception) -> Response:
    """The error page of a rejected form (the app's handler for :class:`FormRejected`)."""
    assert isinstance(exc, FormRejected)
    code = "access_denied" if exc.status == 403 else "invalid_request"
    return error_page(request, ShowError(exc.message, code, exc.detail), exc.status)
