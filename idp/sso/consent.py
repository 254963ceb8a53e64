"""Consent: whether a signed-in user must still approve a client, and the user's answer.

OpenID Connect Core 1.0 section 3.1.2.4: a client registered with ``require_consent`` gets
a code only for scopes the user has granted it; ``prompt=consent`` asks again, and
``prompt=none`` turns a needed question into ``consent_required`` (section 3.1.2.6).

A service of the sso floor, called by :mod:`idp.sso.signin` and by the /consent handler
(``idp.http.consent``); it calls the store, :mod:`idp.oauth.authorization` for the
response locations and :mod:`idp.oauth.codes` to issue the code. Its answers are the
values of :mod:`idp.sso.outcomes`.
"""

from __future__ import annotations

from idp.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    ClientNotIdentified,
    code_redirect,
    error_redirect,
    identify,
)
from idp.oauth.codes import issue_code
from idp.oauth.errors import AccessDenied, ConsentRequired, OAuthError
from idp.sso.outcomes import (
    ConsentNeeded,
    ConsentOutcome,
    RedirectWithCode,
    RedirectWithError,
    ShowError,
    SignedInAnswer,
    SignInServices,
)
from idp.sso.security import consent_granted
from idp.sso.sessions import NewSession, resume_session
from idp.sso.text import N_
from idp.store.base import ClientRecord, SessionRecord, Store, UserRecord

CLIENT_GONE = N_("The application is no longer registered.")
SIGNED_OUT = N_("You are no longer signed in. Start again from the application.")
NO_DECISION = N_("Choose Allow or Deny.")


async def registered_client(store: Store, request: AuthorizationRequest) -> ClientRecord | None:
    """The request's client again, in case it was deleted or changed while a form was open."""
    try:
        client, _ = identify(
            {"redirect_uri": request.redirect_uri}, await store.get_client(request.client_id)
        )
    except ClientNotIdentified:
        return None
    return client


def redirect_with_error(
    issuer: str, request: AuthorizationRequest, error: OAuthError, new: NewSession | None = None
) -> RedirectWithError:
    """The client's redirect URI with ``error`` and the request's state (RFC 6749 4.1.2.1)."""
    refused = AuthorizationError(error, request.redirect_uri, request.state)
    return RedirectWithError(error_redirect(refused, issuer), new)


async def redirect_with_code(
    services: SignInServices,
    request: AuthorizationRequest,
    session: SessionRecord,
    new_session: NewSession | None = None,
) -> RedirectWithCode:
    """Issue a code bound to ``session`` and note that the client used the session."""
    code = await issue_code(
        services.store,
        services.clock,
        request,
        user_id=session.user_id,
        sid=session.sid,
        auth_time=session.auth_time,
        amr=session.amr,
        acr=session.acr,
    )
    await services.store.add_session_client(session.id, request.client_id, services.clock())
    return RedirectWithCode(code_redirect(request, code, services.settings.issuer), new_session)


async def answer_signed_in(
    services: SignInServices,
    client: ClientRecord,
    request: AuthorizationRequest,
    session: SessionRecord,
    user: UserRecord,
    new_session: NewSession | None = None,
) -> SignedInAnswer:
    """Ask for consent where the client needs it; otherwise answer with a code."""
    if client.require_consent:
        granted = set(await services.store.get_consent(user.id, client.client_id))
        if "consent" in request.prompt or not set(request.scope) <= granted:
            if "none" in request.prompt:
                needed = ConsentRequired("the user must consent")
                return redirect_with_error(services.settings.issuer, request, needed, new_session)
            return ConsentNeeded(client.name, request, session.sid, user.username, new_session)
    return await redirect_with_code(services, request, session, new_session)


async def submit_consent(
    services: SignInServices,
    request: AuthorizationRequest,
    *,
    sid: str | None,
    decision: str | None,
    session_cookie: str | None,
    client_address: str | None = None,
) -> ConsentOutcome:
    """Remember an ``allow`` and answer with a code; a ``deny`` is access_denied.

    The answer counts only in the session it was asked in (``sid``) and while the client
    is still registered with the request's redirect URI. An ``allow`` is a security event
    (``consent.grant``) from ``client_address``.
    """
    client = await registered_client(services.store, request)
    if client is None:
        return ShowError(CLIENT_GONE, "invalid_client")
    resumed = await resume_session(
        services.store, services.settings, services.clock, session_cookie
    )
    if resumed is None or resumed[0].sid != sid:
        return ShowError(SIGNED_OUT, "login_required")
    session, user = resumed
    if decision == "allow":
        await services.store.save_consent(
            user.id, client.client_id, request.scope, services.clock()
        )
        granted = consent_granted(user, client.client_id, request.scope, client_address)
        await services.events.record(granted)
        return await redirect_with_code(services, request, session)
    if decision == "deny":
        denied = AccessDenied("the user denied access")
        return redirect_with_error(services.settings.issuer, request, denied)
    return ShowError(NO_DECISION, "invalid_request")
