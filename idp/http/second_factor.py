"""The second-factor form's submissions: POST /login/second-factor (a typed code) and
POST /login/second-factor/passkey (a passkey assertion, its options from
POST /login/second-factor/passkey/options).

The HTTP floor: opens the sealed pending sign-in (seal, expiry and CSRF checked by
:mod:`idp.http.sealed_forms`, the browser binding by :mod:`idp.http.second_factor_pages`),
calls one :mod:`idp.sso.second_factor` service with the typed code or the assertion, and
renders its answer (:mod:`idp.http.signin_pages`): the form again (429 when throttled), the
consent form, or the redirect to the client, with the new session's cookie.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import session_cookie, submitted_binding
from idp.http.passkeys import ceremony_response
from idp.http.responses import NO_STORE, error_body, json_response
from idp.http.sealed_forms import FORGED_FORM, FormRejected, SealedForm, open_sealed_form
from idp.http.second_factor_pages import SECOND_FACTOR_PURPOSE, pending_from
from idp.http.services import Services, client_address, services
from idp.http.signin_pages import render
from idp.sso.outcomes import PendingSecondFactor
from idp.sso.second_factor import (
    begin_passkey_second_factor,
    submit_passkey_second_factor,
    submit_second_factor,
)


async def _pending_form(
    request: Request, found: Services
) -> tuple[SealedForm, PendingSecondFactor, str]:
    """The submitted second-factor form, its pending sign-in, and this browser's binding
    value; FormRejected unless the form was sealed for this browser."""
    form = await open_sealed_form(request, found, SECOND_FACTOR_PURPOSE)
    binding = submitted_binding(request, found.settings)
    pending = pending_from(form.document, binding)
    if pending is None or binding is None:
        raise FormRejected(FORGED_FORM, 403)
    return form, pending, binding


async def second_factor(request: Request) -> Response:
    """POST /login/second-factor: check the code and finish the pending sign-in."""
    found = services(request)
    form, pending, _ = await _pending_form(request, found)
    outcome = await submit_second_factor(
        found,
        pending,
        code=form.fields.get("code", ""),
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    locales = pending.request.ui_locales
    return render(request, found, outcome, sealed=form.sealed, ui_locales=locales)


async def passkey_options(request: Request) -> Response:
    """POST /login/second-factor/passkey/options: a ceremony allowing only the pending
    user's passkeys, its challenge bound to this browser."""
    found = services(request)
    _, pending, binding = await _pending_form(request, found)
    ceremony = await begin_passkey_second_factor(found, pending, browser=binding)
    if ceremony is None:
        body = error_body("invalid_request", "no passkey to use for this sign-in")
        return json_response(body, 400, dict(NO_STORE))
    return ceremony_response(ceremony)


async def second_factor_passkey(request: Request) -> Response:
    """POST /login/second-factor/passkey: check the assertion and finish the pending sign-in."""
    found = services(request)
    form, pending, binding = await _pending_form(request, found)
    outcome = await submit_passkey_second_factor(
        found,
        pending,
        challenge_id=form.fields.get("challenge", ""),
        credential_json=form.fields.get("credential", ""),
        browser=binding,
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    locales = pending.request.ui_locales
    return render(request, found, outcome, sealed=form.sealed, ui_locales=locales)
