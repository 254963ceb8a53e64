"""The second step of a sign-in: when it is needed, and the typed code that finishes it.

After a right password (:func:`idp.sso.signin.sign_in`), or for a live session that a
request finds short of a second factor (:func:`idp.sso.signin.answer_authorization_request`:
the client or the user requires one, ``acr_values`` asks for ``urn:idp:acr:mfa``, or
``max_age`` has passed since the last one), :func:`second_factor_step` says what to ask.
:func:`submit_second_factor` checks the code (:mod:`idp.sso.factors`), or
:func:`submit_passkey_second_factor` a passkey assertion of the same user (WebAuthn Level 2
section 7.2, its options from :func:`begin_passkey_second_factor`), and then starts the
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
    CheckResult,
    check_passkey_second_factor,
    check_second_factor,
    has_passkey,
    has_totp,
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
from idp.sso.passkeys import EXPIRED, Ceremony, begin_authentication
from idp.sso.sessions import end_session, resume_session, session_id_of, start_session
from idp.sso.text import N_
from idp.store.base import ClientRecord, SessionRecord, UserRecord

WRONG_CODE = N_("That code is not right, or it was already used. Try the next code.")
PASSKEY_REFUSED = N_("That passkey was not accepted. Try it again, or use another way to verify.")
USER_GONE = N_("This account cannot sign in. Start again from the application.")


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
    needed = await _ask(services, client, pending, user)
    return needed if needed.code or needed.passkey else EnrolmentNeeded(client.name)


async def _ask(
    services: SignInServices,
    client: ClientRecord,
    pending: PendingSecondFactor,
    user: UserRecord,
    error: str | None = None,
    retry_after: int = 0,
) -> SecondFactorNeeded:
    """The second-factor form for ``user``, offering the factors the user has."""
    code = await has_totp(services.store, user.id)
    passkey = await has_passkey(services.store, user.id)
    return SecondFactorNeeded(client.name, pending, error, retry_after, code, passkey)


async def _pending_parts(
    services: SignInServices, pending: PendingSecondFactor, session_cookie: str | None
) -> tuple[ClientRecord, UserRecord, SessionRecord | None] | ShowError:
    """The client, the user and (for a step-up) the live session a pending sign-in names;
    ShowError when one of them is gone or the browser's session is not the one asked in."""
    client = await registered_client(services.store, pending.request)
    if client is None:
        return ShowError(CLIENT_GONE, "invalid_client")
    user = await services.store.get_user(pending.user_id)
    if user is None or user.disabled:
        return ShowError(USER_GONE, "access_denied")
    if pending.sid is None:
        return client, user, None
    resumed = await resume_session(
        services.store, services.settings, services.clock, session_cookie
    )
    if resumed is None or resumed[0].sid != pending.sid or resumed[1].id != user.id:
        return ShowError(SIGNED_OUT, "login_required")
    return client, user, resumed[0]


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
    parts = await _pending_parts(services, pending, session_cookie)
    if isinstance(parts, ShowError):
        return parts
    client, user, session = parts
    result = await check_second_factor(
        services.store, services.settings, services.clock, user, code, client_address,
        events=services.events, client=client.client_id,
    )  # fmt: skip
    if not result.accepted:
        return await _ask_again(services, client, pending, user, result, WRONG_CODE)
    return await _finish(services, client, pending, user, session, session_cookie, AMR_MFA)


async def begin_passkey_second_factor(
    services: SignInServices, pending: PendingSecondFactor, *, browser: str
) -> Ceremony | None:
    """Options for ``navigator.credentials.get()`` allowing only the pending user's own
    passkeys (WebAuthn Level 2 section 5.5, ``allowCredentials``), the challenge bound to
    ``browser``; None when the user is gone, disabled or has no passkey."""
    user = await services.store.get_user(pending.user_id)
    if user is None or user.disabled or not await has_passkey(services.store, user.id):
        return None
    return await begin_authentication(
        services.store, services.settings, services.clock, browser=browser, user=user
    )


async def submit_passkey_second_factor(
    services: SignInServices,
    pending: PendingSecondFactor,
    *,
    challenge_id: str,
    credential_json: str,
    browser: str,
    client_address: str,
    session_cookie: str | None,
) -> SignInOutcome:
    """Check a passkey assertion of the pending user as the second factor and, if it
    verifies, answer the request as a right code does (:func:`submit_second_factor`).

    The session gets ``amr`` pwd, then hwk or swk as the passkey is device-bound or synced,
    then mfa (RFC 8176 section 2; a step-up keeps what its session proved before in place
    of pwd), and ``acr`` ``urn:idp:acr:mfa``. Another user's passkey,
    a used or expired challenge, or a throttled attempt asks again.
    """
    parts = await _pending_parts(services, pending, session_cookie)
    if isinstance(parts, ShowError):
        return parts
    client, user, session = parts
    result = await check_passkey_second_factor(
        services.store,
        services.settings,
        services.clock,
        user,
        challenge_id=challenge_id,
        credential_json=credential_json,
        browser=browser,
        client_address=client_address,
        events=services.events,
        client=client.client_id,
    )
    if result.passkey is None:
        refused = EXPIRED if result.reason == "challenge" else PASSKEY_REFUSED
        return await _ask_again(services, client, pending, user, result, refused)
    amr = _with_passkey(session.amr if session else ("pwd",), result.passkey.key_method)
    return await _finish(services, client, pending, user, session, session_cookie, amr)


def _with_passkey(proved: tuple[str, ...], key_method: str) -> tuple[str, ...]:
    """The RFC 8176 methods once a passkey (``hwk`` or ``swk``) joins those the sign-in
    proved before it (the password, or a live session's), ending with ``mfa``."""
    earlier = [m for m in proved if m != "mfa"]
    return tuple(dict.fromkeys([*earlier, key_method, "mfa"]))


async def _ask_again(
    services: SignInServices,
    client: ClientRecord,
    pending: PendingSecondFactor,
    user: UserRecord,
    result: CheckResult,
    message: str,
) -> SecondFactorNeeded:
    """The form again after a refused factor: ``message``, or the wait when throttled."""
    if result.check is Check.THROTTLED:
        wait = max(1, math.ceil(result.retry_after))
        return await _ask(
            services, client, pending, user, throttled_message(result.retry_after), wait
        )
    return await _ask(services, client, pending, user, message)


async def _finish(
    services: SignInServices,
    client: ClientRecord,
    pending: PendingSecondFactor,
    user: UserRecord,
    session: SessionRecord | None,
    session_cookie: str | None,
    amr: tuple[str, ...],
) -> SignInOutcome:
    """Answer the request now that the second factor is proved: raise the live session
    (a step-up) or end any earlier one and start a new one with ``amr``."""
    if session is not None:
        now = services.clock()
        raised_ok = await services.store.record_authentication(
            session.id, amr, ACR_MFA, now, second_factor=True
        )
        if not raised_ok:
            return ShowError(SIGNED_OUT, "login_required")
        raised = await services.store.get_session(session.id)
        if raised is None:
            return ShowError(SIGNED_OUT, "login_required")
        return await answer_signed_in(services, client, pending.request, raised, user)
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    new = await start_session(
        services.store, services.settings, services.clock, user.id, methods=amr
    )
    return await answer_signed_in(services, client, pending.request, new.record, user, new)
