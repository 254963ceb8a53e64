"""The passkey ceremonies' endpoints: options as JSON, results as form posts.

The page's script (``/assets/webauthn.js``) posts the form's sealed state and CSRF token
to an ``.../options`` endpoint, which answers ``{"challenge_id", "publicKey"}`` (the
WebAuthn options, binary values as base64url); after ``navigator.credentials`` it submits
the form itself with the credential as JSON, and the handler renders the service's answer
as any sign-in or account change is rendered. Each options request passes the same seal
and CSRF checks as the form (:mod:`idp.http.sealed_forms`), and its challenge is bound to
this browser's CSRF cookie.

- /login/passkey/options, /login/passkey: usernameless sign-in for a pending
  authorization request (:func:`idp.sso.signin.sign_in_with_passkey`);
- /account/login/passkey/options, /account/login/passkey: the same for the account page;
- /account/passkeys/options, /account/passkeys: register a passkey on the account page.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from idp.http.account import (
    ACCOUNT_LOGIN,
    AccountForm,
    account_form,
    render_account_sign_in,
    return_path,
    run_change,
)
from idp.http.html import session_cookie, submitted_binding
from idp.http.responses import NO_STORE, error_body, json_response
from idp.http.sealed_forms import open_sealed_form
from idp.http.services import Services, client_address, services
from idp.http.signin_pages import render
from idp.oauth.authorization import AuthorizationRequest
from idp.sso.account import (
    ReauthRequired,
    add_passkey,
    begin_passkey_registration,
    sign_in_to_account_with_passkey,
)
from idp.sso.passkeys import Ceremony, begin_authentication
from idp.sso.signin import sign_in_with_passkey


def ceremony_response(ceremony: Ceremony) -> Response:
    """The options of one ceremony and the handle of its challenge, never cached."""
    document = {
        "challenge_id": ceremony.challenge_id,
        "publicKey": json.loads(ceremony.options_json),
    }
    return json_response(document, 200, dict(NO_STORE))


def _browser(request: Request, found: Services) -> str:
    # The sealed-form check before every call has proved this cookie is present.
    return submitted_binding(request, found.settings) or ""


async def login_options(request: Request) -> Response:
    """POST /login/passkey/options: a usernameless authentication ceremony."""
    found = services(request)
    await open_sealed_form(request, found, "login")
    ceremony = await begin_authentication(
        found.store, found.settings, found.clock, browser=_browser(request, found)
    )
    return ceremony_response(ceremony)


async def login_with_passkey(request: Request) -> Response:
    """POST /login/passkey: sign in with the passkey for the pending authorization request."""
    found = services(request)
    form = await open_sealed_form(request, found, "login")
    pending = AuthorizationRequest.from_document(form.document)
    outcome = await sign_in_with_passkey(
        found,
        pending,
        challenge_id=form.fields.get("challenge", ""),
        credential_json=form.fields.get("credential", ""),
        browser=_browser(request, found),
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    return render(request, found, outcome, sealed=form.sealed, ui_locales=pending.ui_locales)


async def account_login_options(request: Request) -> Response:
    """POST /account/login/passkey/options: a usernameless ceremony for the account page."""
    found = services(request)
    await open_sealed_form(request, found, ACCOUNT_LOGIN)
    ceremony = await begin_authentication(
        found.store, found.settings, found.clock, browser=_browser(request, found)
    )
    return ceremony_response(ceremony)


async def account_login_with_passkey(request: Request) -> Response:
    """POST /account/login/passkey: sign in to the account page with a passkey."""
    found = services(request)
    form = await open_sealed_form(request, found, ACCOUNT_LOGIN)
    outcome = await sign_in_to_account_with_passkey(
        found,
        challenge_id=form.fields.get("challenge", ""),
        credential_json=form.fields.get("credential", ""),
        browser=_browser(request, found),
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    next_path = return_path(form.document.get("next"))
    return render_account_sign_in(request, found, outcome, next_path)


async def registration_options(request: Request) -> Response:
    """POST /account/passkeys/options: a registration ceremony for the signed-in person."""
    found = services(request)
    current, _ = await account_form(request, found)
    if current is None:
        return json_response(error_body("login_required", "sign in first"), 401, dict(NO_STORE))
    session, user = current
    try:
        ceremony = await begin_passkey_registration(
            found, session, user, browser=_browser(request, found)
        )
    except ReauthRequired:
        body = error_body("login_required", "sign in again first")
        return json_response(body, 403, dict(NO_STORE))
    return ceremony_response(ceremony)


async def register_passkey(request: Request) -> Response:
    """POST /account/passkeys: keep the passkey just created, with its name."""
    browser = _browser(request, services(request))

    async def add(found: Services, form: AccountForm) -> str:
        await add_passkey(
            found,
            form.session,
            form.user,
            challenge_id=form.fields.get("challenge", ""),
            credential_json=form.fields.get("credential", ""),
            name=form.fields.get("name", ""),
            browser=browser,
        )
        return "passkey-added"

    return await run_change(request, add)
