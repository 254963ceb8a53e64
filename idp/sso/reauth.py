"""Re-authentication of a live session before a sensitive change on the account pages.

A change of second factors needs a sign-in within IDP_REAUTH_MAX_AGE seconds. A person
whose sign-in is older confirms it is still them: the password (throttled as at sign-in)
and, when the account has an authenticator app, its code or a recovery code (throttled
and audited as at sign-in). A passkey is not asked here: a person whose only second factor
is a passkey confirms with the password, or signs in afresh with the passkey.
The session then records the new authentication (its ``auth_time``, and its ``amr`` and
``acr``), and keeps its id, its sid and its clients' grants.

A service of the sso floor, called by the account pages; it never sees HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.oauth.acr import ACR_MFA, ACR_PASSWORD, AMR_MFA, AMR_PASSWORD
from idp.sso.factors import check_second_factor, has_totp
from idp.sso.login import check_password, throttled_message
from idp.sso.outcomes import SignInServices
from idp.sso.second_factor import WRONG_CODE
from idp.sso.security import Attempt, attempt_throttled, password_checked
from idp.sso.text import N_
from idp.sso.throttle import record_login_success, reserve_login_attempt
from idp.store.base import SessionRecord, UserRecord

WRONG_PASSWORD = N_("Incorrect password.")


def recently_signed_in(services: SignInServices, session: SessionRecord) -> bool:
    """Whether the session's last sign-in is within IDP_REAUTH_MAX_AGE seconds."""
    return services.clock() - session.auth_time <= services.settings.reauth_max_age


@dataclass(frozen=True)
class ReauthRefused:
    """The re-authentication failed: say ``message``; ``retry_after`` seconds when throttled."""

    message: str
    retry_after: int = 0


async def reauthenticate(
    services: SignInServices,
    session: SessionRecord,
    user: UserRecord,
    *,
    password: str,
    code: str,
    client_address: str,
) -> ReauthRefused | None:
    """Check the password (and the TOTP or recovery code, if the user has TOTP) of a live session's
    user and record the new authentication in the session; None when it succeeded."""
    who = {"username": user.username, "ip": client_address}
    seen = Attempt("reauth", client_address)
    verdict = await reserve_login_attempt(services.store, services.settings, services.clock, **who)
    if not verdict.allowed:
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="password", user=user
        )
        return ReauthRefused(throttled_message(verdict.delay), max(1, int(verdict.delay) + 1))
    checked = await check_password(services.store, services.passwords, user.username, password)
    right = checked if checked is not None and checked.id == user.id else None
    await password_checked(
        services.events, services.store, seen, username=user.username, user=right,
        verdict=verdict,
    )  # fmt: skip
    if right is None:
        return ReauthRefused(WRONG_PASSWORD)
    await record_login_success(services.store, services.settings, services.clock, **who)
    two_factors = await has_totp(services.store, user.id)
    if two_factors:
        result = await check_second_factor(
            services.store, services.settings, services.clock, user, code, client_address,
            events=services.events, purpose="reauth",
        )  # fmt: skip
        if not result.accepted:
            if result.retry_after:
                wait = max(1, int(result.retry_after) + 1)
                return ReauthRefused(throttled_message(result.retry_after), wait)
            return ReauthRefused(WRONG_CODE)
    amr, acr = (AMR_MFA, ACR_MFA) if two_factors else (AMR_PASSWORD, ACR_PASSWORD)
    await services.store.record_authentication(
        session.id, amr, acr, services.clock(), second_factor=two_factors
    )
    return None
