"""Signing in: answering an authorization request from a live session or a typed password.

Two service calls, each one step of the browser's way to a code (OpenID Connect Core 1.0
section 3.1.2):

- :func:`answer_authorization_request` checks the request (:mod:`idp.oauth.authorization`)
  and decides whether the live session may answer it (prompt, max_age, id_token_hint;
  section 3.1.2.3) or the user must sign in;
- :func:`sign_in` takes the login form's username and password for a pending request:
  throttle (:mod:`idp.sso.throttle`), password check (:mod:`idp.sso.login`), a new
  session in place of any earlier one (:mod:`idp.sso.sessions`, which revokes the old
  session's grants and tells its clients by back-channel logout), then consent or code
  (:mod:`idp.sso.consent`);
  (:mod:`idp.sso.consent`); where a second factor is needed
  (:mod:`idp.sso.second_factor`), the session waits for it;
- :func:`sign_in_with_passkey` does the same for a usernameless passkey assertion
  (:mod:`idp.sso.passkeys`) in place of the username, password and second factor.

A service of the sso floor: the /authorize and /login handlers call it with plain values
and render the :mod:`idp.sso.outcomes` value it returns; it never sees HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from idp.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    ClientNotIdentified,
    check_client,
    check_client_id,
    error_redirect,
    identify,
    validate_authorization_request,
)
from idp.oauth.errors import InteractionRequired, InvalidRequestObject, LoginRequired
from idp.oauth.par import (
    UnknownRequestUri,
    check_request_uri,
    par_required,
    pushed_request,
    request_uri_hash,
)
from idp.oauth.request_object import request_object_params
from idp.sso.consent import CLIENT_GONE, answer_signed_in, redirect_with_error, registered_client
from idp.sso.factors import has_second_factor
from idp.sso.login import LOGIN_FAILED, check_password, throttled_message
from idp.sso.outcomes import (
    AuthorizeOutcome,
    EnrolmentNeeded,
    PendingSecondFactor,
    RedirectWithError,
    ShowError,
    ShowLoginForm,
    SignInOutcome,
    SignInServices,
    Throttled,
)
from idp.sso.passkeys import PasskeyRefused, record_passkey_sign_in, verify_passkey_assertion
from idp.sso.second_factor import second_factor_step
from idp.sso.security import Attempt, attempt_throttled, password_checked
from idp.sso.sessions import end_session, resume_session, session_id_of, start_session
from idp.sso.text import N_
from idp.sso.throttle import (
    record_address_success,
    record_login_success,
    reserve_address_attempt,
    reserve_login_attempt,
)
from idp.store.base import ClientRecord, SessionRecord

UNKNOWN_APPLICATION = N_(
    "The application that sent you here is not set up to sign in with us, or the link it "
    "used is broken."
)
REQUEST_GONE = N_("This sign-in link has expired or was already used, so it cannot be used again.")
START_AGAIN = N_("Go back to the application and start signing in again from there.")
ASK_THE_APP = N_(
    "Go back to the application and try again from its sign-in button. If it keeps "
    "happening, contact the people who run the application: only they can fix it."
)


async def answer_authorization_request(
    services: SignInServices,
    params: Mapping[str, str],
    *,
    session_cookie: str | None,
    resources: Sequence[str] = (),
) -> AuthorizeOutcome:
    """Answer an authorization request: at once from a live session that suffices, else ask.

    Until the client and its redirect URI are known good the answer is an error page;
    after that errors go to the client. ``prompt=none`` without a usable session is
    login_required. ``resources`` are the request's ``resource`` values (RFC 8707).
    """
    try:
        client_id = check_client_id(params)
        if "request_uri" in params:
            client, request = await pushed_authorization_request(services, params, client_id)
        else:
            if "request" in params:
                params, resources = await unpacked_request_object(services, params, client_id)
            client, redirect_uri = identify(params, await services.store.get_client(client_id))
            request = validate_authorization_request(
                params,
                client,
                redirect_uri,
                services.keys.ring,
                services.settings.issuer,
                resources,
            )
            check_pushing_not_required(client, services.settings.require_par, request)
    except ClientNotIdentified as exc:
        return ShowError(UNKNOWN_APPLICATION, "invalid_request", str(exc), ASK_THE_APP)
    except UnknownRequestUri as exc:
        return ShowError(REQUEST_GONE, "invalid_request_uri", str(exc), START_AGAIN)
    except InvalidRequestObject as exc:
        return ShowError(UNKNOWN_APPLICATION, exc.error, exc.description, ASK_THE_APP)
    except AuthorizationError as exc:
        return RedirectWithError(error_redirect(exc, services.settings.issuer))
    resumed = await resume_session(
        services.store, services.settings, services.clock, session_cookie
    )
    if resumed is not None:
        session, user = resumed
        renewable = await has_second_factor(services.store, user.id)
        if not needs_login(request, session, services.clock(), renewable=renewable):
            pending = PendingSecondFactor(request, user.id, session.sid)
            step = await second_factor_step(services, client, pending, user, session)
            if step is None:
                return await answer_signed_in(services, client, request, session, user)
            if "none" in request.prompt:
                needed = InteractionRequired("the user must give a second factor")
                return redirect_with_error(services.settings.issuer, request, needed)
            return step
    if "none" in request.prompt:
        required = LoginRequired("the user must sign in")
        return redirect_with_error(services.settings.issuer, request, required)
    return ShowLoginForm(client.name, request, request.login_hint)


async def unpacked_request_object(
    services: SignInServices, params: Mapping[str, str], client_id: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The parameters and resources of the request object sent by value (RFC 9101 section 5),
    in place of every other parameter but client_id; shown as an error page when invalid,
    since its redirect URI cannot be trusted."""
    client = await services.store.get_client(client_id)
    if client is None:
        raise ClientNotIdentified("the client_id is not a registered client")
    unpacked = await request_object_params(
        params["request"],
        client,
        services.client_keys,
        services.settings.issuer,
        services.clock(),
    )
    return unpacked.params, unpacked.resources


async def pushed_authorization_request(
    services: SignInServices, params: Mapping[str, str], client_id: str
) -> tuple[ClientRecord, AuthorizationRequest]:
    """The client and the request a request_uri names, used up by this call (RFC 9126
    section 4); every parameter beside client_id and request_uri is ignored."""
    request_uri = check_request_uri(params)
    pushed = await services.store.consume_pushed_request(
        request_uri_hash(request_uri), services.clock()
    )
    client = await services.store.get_client(client_id)
    request = pushed_request(pushed, client_id, client)
    return check_client(client), request


def check_pushing_not_required(
    client: ClientRecord, required_for_all: bool, request: AuthorizationRequest
) -> None:
    """AuthorizationError when the client had to push this request first (RFC 9126 5, 6)."""
    required = par_required(client, required_for_all)
    if required is not None:
        raise AuthorizationError(required, request.redirect_uri, request.state)


def needs_login(
    request: AuthorizationRequest, session: SessionRecord, now: float, *, renewable: bool = False
) -> bool:
    """Whether the request asks for a fresher or other sign-in than ``session`` (OIDC 3.1.2.1).

    When ``renewable`` (the user has a second factor), a ``max_age`` that has passed is met
    by asking the second factor again (:mod:`idp.sso.second_factor`), not the password.
    """
    if "login" in request.prompt:
        return True
    if request.hint_subject is not None and request.hint_subject != session.user_id:
        return True  # the session is another user's than the one the client expects
    if renewable:
        return False
    return request.max_age is not None and now - session.auth_time > request.max_age


async def sign_in(
    services: SignInServices,
    request: AuthorizationRequest,
    *,
    username: str,
    password: str,
    client_address: str,
    session_cookie: str | None,
) -> SignInOutcome:
    """Check a typed password for a pending request and, if right, answer it in a new session.

    The throttle counts the attempt before the password is checked (a failure until it
    succeeds), so a refused attempt never reaches the check and parallel ones cannot
    outrun the count. A right password ends any earlier session (no fixation) and
    starts a new one, which every answer after it carries.
    """
    client = await registered_client(services.store, request)
    if client is None:
        return ShowError(CLIENT_GONE, "invalid_client")
    who = {"username": username, "ip": client_address}
    seen = Attempt("authorize", client_address, client.client_id)
    verdict = await reserve_login_attempt(services.store, services.settings, services.clock, **who)
    if not verdict.allowed:
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="password",
            username=username,
        )  # fmt: skip
        refused = ShowLoginForm(client.name, request, username, throttled_message(verdict.delay))
        return Throttled(refused, max(1, math.ceil(verdict.delay)))
    user = await check_password(services.store, services.passwords, username, password)
    await password_checked(
        services.events, services.store, seen, username=username, user=user, verdict=verdict
    )
    if user is None:
        return ShowLoginForm(client.name, request, username, LOGIN_FAILED)
    await record_login_success(services.store, services.settings, services.clock, **who)
    step = await second_factor_step(services, client, PendingSecondFactor(request, user.id), user)
    if isinstance(step, EnrolmentNeeded):
        if session_cookie:
            await end_session(services, session_id_of(session_cookie))
        new = await start_session(services.store, services.settings, services.clock, user.id)
        return EnrolmentNeeded(client.name, new)
    if step is not None:
        return step
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    new = await start_session(services.store, services.settings, services.clock, user.id)
    return await answer_signed_in(services, client, request, new.record, user, new)


async def sign_in_with_passkey(
    services: SignInServices,
    request: AuthorizationRequest,
    *,
    challenge_id: str,
    credential_json: str,
    browser: str,
    client_address: str,
    session_cookie: str | None,
) -> SignInOutcome:
    """Check a usernameless passkey assertion for a pending request and, if it verifies,
    answer the request in a new session, as a right password does (:func:`sign_in`).

    The passkey is the first factor and names the user (WebAuthn Level 2 section 7.2,
    through :func:`idp.sso.passkeys.verify_passkey_assertion`, user verification required).
    The attempt is counted against the client address before it is checked; success and
    failure are audited (``passkey.sign_in``) with the RFC 8176 methods it proved.
    """
    client = await registered_client(services.store, request)
    if client is None:
        return ShowError(CLIENT_GONE, "invalid_client")
    now = services.clock
    verdict = await reserve_address_attempt(
        services.store, services.settings, now, ip=client_address
    )
    if not verdict.allowed:
        seen = Attempt("authorize", client_address, client.client_id)
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="passkey"
        )
        refused = ShowLoginForm(client.name, request, None, throttled_message(verdict.delay))
        return Throttled(refused, max(1, math.ceil(verdict.delay)))
    try:
        verified = await verify_passkey_assertion(
            services.store,
            services.settings,
            now,
            challenge_id=challenge_id,
            credential_json=credential_json,
            browser=browser,
        )
    except PasskeyRefused as exc:
        await record_passkey_sign_in(services.store, now(), None, request.client_id, exc.reason)
        return ShowLoginForm(client.name, request, None, exc.message)
    await record_address_success(services.store, services.settings, now, ip=client_address)
    await record_passkey_sign_in(services.store, now(), verified, request.client_id)
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    new = await start_session(
        services.store, services.settings, now, verified.user.id, methods=verified.amr
    )
    return await answer_signed_in(services, client, request, new.record, verified.user, new)
