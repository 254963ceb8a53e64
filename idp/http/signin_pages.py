"""How the browser sees a sign-in service's answer: the login and consent pages, redirects.

HTTP plumbing shared by the /authorize, /login and /consent handlers: each calls one
service of :mod:`idp.sso.signin` or :mod:`idp.sso.consent` and hands the
:mod:`idp.sso.outcomes` value it got to :func:`render`. Pending requests travel in sealed
form fields (:mod:`idp.http.sealed_forms`); a new session's cookie is set here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import error_page, redirect, set_session_cookie
from idp.http.sealed_forms import FORM_LIFETIME, form_page
from idp.http.second_factor_pages import enrolment_needed_page, second_factor_page
from idp.http.services import Services
from idp.sso.outcomes import (
    ConsentNeeded,
    EnrolmentNeeded,
    RedirectWithCode,
    RedirectWithError,
    SecondFactorNeeded,
    ShowError,
    ShowLoginForm,
    SignInOutcome,
    Throttled,
)
from idp.sso.text import N_

SCOPE_DESCRIPTIONS = {
    "openid": N_("sign you in with your account"),
    "profile": N_("see your name and username"),
    "email": N_("see your email address"),
    "address": N_("see your postal address"),
    "phone": N_("see your phone number"),
    "offline_access": N_("keep access while you are away"),
}
"""The standard scopes (OpenID Connect Core 1.0 sections 5.4 and 11) in plain words."""


def render(
    request: Request,
    found: Services,
    outcome: SignInOutcome,
    *,
    sealed: str | None = None,
    error_status: int = 303,
    ui_locales: Sequence[str] = (),
) -> Response:
    """The page or redirect for ``outcome``, with the new session's cookie if it has one.

    ``sealed`` is the login form's state as submitted, shown again as it was; without it
    the pending request is sealed afresh. ``error_status`` is the redirect status of an
    error response. ``ui_locales`` are the request's preferred languages for its pages.
    """
    response: Response
    match outcome:
        case ShowError():
            return error_page(request, outcome, ui_locales=ui_locales)
        case ShowLoginForm():
            return login_page(request, found, outcome, sealed)
        case Throttled(form=form, retry_after=retry_after):
            response = login_page(request, found, form, sealed)
            response.status_code = 429
            response.headers["Retry-After"] = str(retry_after)
            return response
        case SecondFactorNeeded():
            # The login form's seal is not the pending second factor's: seal it anew.
            return second_factor_page(request, found, outcome, _factor_seal(outcome, sealed))
        case EnrolmentNeeded():
            return enrolment_needed_page(request, found, outcome, ui_locales)
        case ConsentNeeded():
            response = consent_page(request, found, outcome)
        case RedirectWithCode(location=location):
            response = redirect(location)
        case RedirectWithError(location=location):
            response = redirect(location, error_status)
        case _:
            assert_never(outcome)
    if outcome.new_session is not None:
        set_session_cookie(response, found.settings, outcome.new_session.cookie_value)
    return response


def _factor_seal(asked: SecondFactorNeeded, sealed: str | None) -> str | None:
    """The submitted seal to show again: only a second-factor form's own (one that failed)."""
    return sealed if asked.error is not None else None


def login_page(
    request: Request, found: Services, form: ShowLoginForm, sealed: str | None
) -> Response:
    """The login form for the pending request, with the username and error it should show."""
    if sealed is None:
        document = form.request.to_document()
        sealed = found.sealer.seal("login", document, found.clock() + FORM_LIFETIME)
    context = {"client_name": form.client_name, "username": form.username, "error": form.error}
    targets = (form.request.redirect_uri,)
    locales = form.request.ui_locales
    return form_page(
        request, found, "login.html", sealed, context, targets, scripts=True, ui_locales=locales
    )


def described_scopes(found: Services, scope: Sequence[str]) -> list[tuple[str, str]]:
    """Each scope with the words a consent shows for it (the operator's, else ours)."""
    # The operator's words are looked up in the catalogue too, so a translator may add them.
    configured = {scope: N_(words) for scope, words in found.settings.scope_descriptions}
    described = {**SCOPE_DESCRIPTIONS, **configured}
    return [(s, described.get(s, "")) for s in scope]


def consent_page(request: Request, found: Services, asked: ConsentNeeded) -> Response:
    """The consent form: the client, the user and each scope asked for, in plain words."""
    document = {"request": asked.request.to_document(), "sid": asked.sid}
    sealed = found.sealer.seal("consent", document, found.clock() + FORM_LIFETIME)
    context = {
        "client_name": asked.client_name,
        "username": asked.username,
        "scopes": described_scopes(found, asked.request.scope),
    }
    targets = (asked.request.redirect_uri,)
    locales = asked.request.ui_locales
    return form_page(request, found, "consent.html", sealed, context, targets, ui_locales=locales)
