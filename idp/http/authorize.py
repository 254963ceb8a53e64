"""The authorization endpoint and the login and consent forms that may interrupt it.

GET and POST /authorize (RFC 6749 section 3.1, OpenID Connect Core 1.0 section 3.1.2.1)
answer at once with a code when a live session suffices; otherwise the request is sealed
into the login or consent form and answered when that form comes back.
"""

from __future__ import annotations

import logging
import math

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import request_params
from idp.http.html import error_page, redirect, session_cookie, set_session_cookie
from idp.http.sealed_forms import FORM_LIFETIME, form_page, open_sealed_form
from idp.http.services import Services, services
from idp.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    ClientNotIdentified,
    check_client_id,
    code_redirect,
    error_redirect,
    identify,
    validate_authorization_request,
)
from idp.oauth.codes import issue_code
from idp.oauth.errors import AccessDenied, ConsentRequired, LoginRequired, OAuthError
from idp.sso.login import LOGIN_FAILED, check_password, throttled_message
from idp.sso.sessions import end_session, resume_session, session_id_of, start_session
from idp.sso.throttle import record_login_success, reserve_login_attempt
from idp.store.base import ClientRecord, SessionRecord, UserRecord

log = logging.getLogger("idp.authorize")

SCOPE_DESCRIPTIONS = {
    "openid": "sign you in with your account",
    "profile": "see your name and username",
    "email": "see your email address",
    "offline_access": "keep access while you are away",
}


async def authorize(request: Request) -> Response:
    """GET and POST /authorize: check the client first, then answer or ask the user."""
    found = services(request)
    try:
        params = await request_params(request)
        client_id = check_client_id(params)
        client, redirect_uri = identify(params, await found.store.get_client(client_id))
    except OAuthError as exc:
        return error_page(exc.description)
    except ClientNotIdentified as exc:
        return error_page(str(exc))
    try:
        auth_request = validate_authorization_request(
            params, client, redirect_uri, found.keys.ring, found.settings.issuer
        )
        return await _answer(request, found, client, auth_request)
    except AuthorizationError as exc:
        return redirect(error_redirect(exc, found.settings.issuer), 302)


async def _answer(
    request: Request, found: Services, client: ClientRecord, auth_request: AuthorizationRequest
) -> Response:
    """Use the live session if it satisfies prompt, max_age and id_token_hint (OIDC Core
    3.1.2.1 and 3.1.2.3), else log in; prompt=none then gets login_required."""
    resumed = await resume_session(
        found.store, found.settings, found.clock, session_cookie(request, found.settings)
    )
    if resumed is not None and not _needs_login(auth_request, resumed[0], found.clock()):
        return await _finish(request, found, client, auth_request, *resumed)
    if "none" in auth_request.prompt:
        raise AuthorizationError(
            LoginRequired("the user must sign in"), auth_request.redirect_uri, auth_request.state
        )
    return _login_page(request, found, client, auth_request)


def _needs_login(auth_request: AuthorizationRequest, session: SessionRecord, now: float) -> bool:
    if "login" in auth_request.prompt:
        return True
    if auth_request.hint_subject is not None and auth_request.hint_subject != session.user_id:
        return True  # the session is another user's than the one the client expects
    return auth_request.max_age is not None and now - session.auth_time > auth_request.max_age


async def _finish(
    request: Request,
    found: Services,
    client: ClientRecord,
    auth_request: AuthorizationRequest,
    session: SessionRecord,
    user: UserRecord,
) -> Response:
    """Ask for consent where the client needs it; otherwise issue the code and redirect."""
    if client.require_consent:
        granted = set(await found.store.get_consent(user.id, client.client_id))
        if "consent" in auth_request.prompt or not set(auth_request.scope) <= granted:
            if "none" in auth_request.prompt:
                raise AuthorizationError(
                    ConsentRequired("the user must consent"),
                    auth_request.redirect_uri,
                    auth_request.state,
                )
            return _consent_page(request, found, client, auth_request, session, user)
    return await _issue(found, auth_request, session)


async def _issue(
    found: Services, auth_request: AuthorizationRequest, session: SessionRecord
) -> Response:
    code = await issue_code(
        found.store,
        found.clock,
        auth_request,
        user_id=session.user_id,
        sid=session.sid,
        auth_time=session.auth_time,
    )
    await found.store.add_session_client(session.id, auth_request.client_id, found.clock())
    return redirect(code_redirect(auth_request, code, found.settings.issuer))


# -- the login form ------------------------------------------------------------------------


def _login_page(
    request: Request,
    found: Services,
    client: ClientRecord,
    auth_request: AuthorizationRequest,
    *,
    sealed: str | None = None,
    username: str | None = None,
    error: str | None = None,
) -> Response:
    if sealed is None:
        sealed = found.sealer.seal(
            "login", auth_request.to_document(), found.clock() + FORM_LIFETIME
        )
    context = {
        "client_name": client.name,
        "username": username if username is not None else auth_request.login_hint,
        "error": error,
    }
    return form_page(request, found, "login.html", sealed, context, (auth_request.redirect_uri,))


async def _reidentify(found: Services, auth_request: AuthorizationRequest) -> ClientRecord | None:
    """The client again, in case it was deleted or changed while the form was open."""
    try:
        client, _ = identify(
            {"redirect_uri": auth_request.redirect_uri},
            await found.store.get_client(auth_request.client_id),
        )
    except ClientNotIdentified:
        return None
    return client


async def login(request: Request) -> Response:
    """POST /login: check the password, start a new session, and answer the pending request.

    The throttle counts the attempt before the password is checked (a failure until it
    succeeds), so a refused attempt never reaches the check and parallel ones cannot
    outrun the count.
    """
    found = services(request)
    opened = await open_sealed_form(request, found, "login")
    if isinstance(opened, Response):
        return opened
    form, sealed, document = opened
    auth_request = AuthorizationRequest.from_document(document)
    client = await _reidentify(found, auth_request)
    if client is None:
        return error_page("The application is no longer registered.")
    username, password = form.get("username", ""), form.get("password", "")
    who = {"username": username, "ip": request.client.host if request.client else ""}
    verdict = await reserve_login_attempt(found.store, found.settings, found.clock, **who)
    if not verdict.allowed:
        page = _login_page(
            request,
            found,
            client,
            auth_request,
            sealed=sealed,
            username=username,
            error=throttled_message(verdict.delay),
        )
        page.status_code = 429
        page.headers["Retry-After"] = str(max(1, math.ceil(verdict.delay)))
        return page
    user = await check_password(found.store, found.passwords, username, password)
    if user is None:
        return _login_page(
            request,
            found,
            client,
            auth_request,
            sealed=sealed,
            username=username,
            error=LOGIN_FAILED,
        )
    await record_login_success(found.store, found.settings, found.clock, **who)
    return await _signed_in(request, found, client, auth_request, user)


async def _signed_in(
    request: Request,
    found: Services,
    client: ClientRecord,
    auth_request: AuthorizationRequest,
    user: UserRecord,
) -> Response:
    """Replace any earlier session with a new one (no fixation) and answer the request."""
    previous = session_cookie(request, found.settings)
    if previous:
        await end_session(found.store, found.clock, session_id_of(previous), found.notifier)
    new = await start_session(found.store, found.settings, found.clock, user.id)
    try:
        response = await _finish(request, found, client, auth_request, new.record, user)
    except AuthorizationError as exc:
        response = redirect(error_redirect(exc, found.settings.issuer))
    set_session_cookie(response, found.settings, new.cookie_value)
    return response


# -- the consent form ----------------------------------------------------------------------


def _consent_page(
    request: Request,
    found: Services,
    client: ClientRecord,
    auth_request: AuthorizationRequest,
    session: SessionRecord,
    user: UserRecord,
) -> Response:
    document = {"request": auth_request.to_document(), "sid": session.sid}
    sealed = found.sealer.seal("consent", document, found.clock() + FORM_LIFETIME)
    context = {
        "client_name": client.name,
        "username": user.username,
        "scopes": [(s, SCOPE_DESCRIPTIONS.get(s, "")) for s in auth_request.scope],
    }
    return form_page(request, found, "consent.html", sealed, context, (auth_request.redirect_uri,))


async def consent(request: Request) -> Response:
    """POST /consent: remember the user's decision and answer the pending request."""
    found = services(request)
    opened = await open_sealed_form(request, found, "consent")
    if isinstance(opened, Response):
        return opened
    form, _, document = opened
    auth_request = AuthorizationRequest.from_document(document["request"])
    client = await _reidentify(found, auth_request)
    if client is None:
        return error_page("The application is no longer registered.")
    resumed = await resume_session(
        found.store, found.settings, found.clock, session_cookie(request, found.settings)
    )
    if resumed is None or resumed[0].sid != document.get("sid"):
        return error_page("You are no longer signed in. Start again from the application.")
    session, user = resumed
    decision = form.get("decision")
    if decision == "allow":
        await found.store.save_consent(user.id, client.client_id, auth_request.scope, found.clock())
        return await _issue(found, auth_request, session)
    if decision == "deny":
        denied = AuthorizationError(
            AccessDenied("the user denied access"), auth_request.redirect_uri, auth_request.state
        )
        return redirect(error_redirect(denied, found.settings.issuer))
    return error_page("Choose Allow or Deny.")
