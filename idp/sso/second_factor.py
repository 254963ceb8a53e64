"""The second step of a sign-in: when it is needed, and the typed code that finishes it.

After a right password (:func:`idp.sso.signin.sign_in`), or for a live session that a
request finds short of a second factor (:func:`idp.sso.signin.answer_authorization_request`:
the client or the user requires one, ``acr_values`` asks for ``urn:idp:acr:mfa``, or
``max_age`` has passed since the last one), :func:`second_factor_step` says what to ask.
:func:`submit_second_factor` checks the code (:mod:`idp.sso.factors`) and then starts the
session (a new sign-in) or raises the live one to ``urn:idp:acr:mfa`` (a step-up), and
answers the request as a signed-in user.

Nothing is issued and no session is started before the code is right: what was proved so
far travels only in the sealed, browser-bound pending state the handler keeps
(:class:`idp.sso.outcomes.PendingSecondFactor`). A service of the sso floor; it never sees
HTTP.
"""

from __future__ import annotations

import math

from idp.oauth.acr import ACR_MFA, AMR_MFA
from idp.sso.consent import CLIENT_GONE, SIGNED_OUT, answer_signed_in, registered_client
from idp.sso.factors import (
    Check,
    check_second_factor,
    has_second_factor,
    second_factor_required,
    session_has_second_factor,
)
from idp.sso.login import throttled_message
from idp.sso.outcomes import (
    EnrolmentNeeded,
    FactorAnswer,
    PendingSecondFactor,
    SecondFactorNeeded,
    ShowError,
    SignInOutcome,
    SignInServices,
)
from idp.sso.sessions import end_session, resume_session, session_id_of, start_session
from idp.store.base import ClientRecord, SessionRecord, UserRecord

WRONG_CODE = "That code is not right, or it was already used. Try the next code."
USER_GONE = "This account cannot sign in. Start again from the application."


async def second_factor_step(
    services: SignInServices,
    client: ClientRecord,
    pending: PendingSecondFactor,
    user: UserRecord,
    session: SessionRecord | None = None,
) -> FactorAnswer | None:
    """What to ask before ``pending``'s request may be answered for ``user``; None when
    nothing.

    With ``session`` (a live one) nothing is asked when it proved a second factor, within
    ``max_age`` seconds if the request gives one (OIDC Core 3.1.2.1). A second factor the
    user does not have yet is :class:`EnrolmentNeeded`.
    """
    asked = pending.request
    if not await second_factor_required(services.store, user, client, asked.acr_values):
        return None
    if session is not None and session_has_second_factor(session, services.clock(), asked.max_age):
        return None
    if not await has_second_factor(services.store, user.id):
        return EnrolmentNeeded(client.name)
    return SecondFactorNeeded(client.name, pending)


async def submit_second_factor(
    services: SignInServices,
    pending: PendingSecondFactor,
    *,
    code: str,
    client_address: str,
    session_cookie: str | None,
) -> SignInOutcome:
    """Check a typed TOTP or recovery code for a pending sign-in and, if right, answer it.

    A step-up counts only in the session it was asked in; a new sign-in ends any earlier
    session and starts one with ``amr`` pwd, otp, mfa (RFC 8176) and ``acr``
    ``urn:idp:acr:mfa``. A wrong, reused or throttled code asks again.
    """
    client = await registered_client(services.store, pending.request)
    if client is None:
        return ShowError(CLIENT_GONE)
    user = await services.store.get_user(pending.user_id)
    if user is None or user.disabled:
        return ShowError(USER_GONE)
    session: SessionRecord | None = None
    if pending.sid is not None:
        resumed = await resume_session(
            services.store, services.settings, services.clock, session_cookie
        )
        if resumed is None or resumed[0].sid != pending.sid or resumed[1].id != user.id:
            return ShowError(SIGNED_OUT)
        session = resumed[0]
    result = await check_second_factor(
        services.store, services.settings, services.clock, user, code, client_address
    )
    if result.check is Check.THROTTLED:
        message = throttled_message(result.retry_after)
        wait = max(1, math.ceil(result.retry_after))
        return SecondFactorNeeded(client.name, pending, message, wait)
    if not result.accepted:
        return SecondFactorNeeded(client.name, pending, WRONG_CODE)
    if session is not None:
        now = services.clock()
        raised_ok = await services.store.record_authentication(
            session.id, AMR_MFA, ACR_MFA, now, second_factor=True
        )
        if not raised_ok:
            return ShowError(SIGNED_OUT)
        raised = await services.store.get_session(session.id)
        if raised is None:
            return ShowError(SIGNED_OUT)
        return await answer_signed_in(services, client, pending.request, raised, user)
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    new = await start_session(
        services.store, services.settings, services.clock, user.id, second_factor=True
    )
    return await answer_signed_in(services, client, pending.request, new.record, user, new)
