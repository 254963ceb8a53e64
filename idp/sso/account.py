"""The signed-in person's own account: what the account page shows and the changes it makes.

The page belongs to whoever holds a live session (:func:`idp.sso.sessions.resume_session`).
Signing in for it uses the login form without an authorization request: the same password
check and throttle as a client's sign-in (:mod:`idp.sso.login`, :mod:`idp.sso.throttle`)
or a usernameless passkey (:mod:`idp.sso.passkeys`), and a new session in place of the
old one; no client, code or token is involved.

Sensitive changes (the password, adding or removing a passkey, signing out other
sessions) need a sign-in no older than IDP_REAUTH_MAX_AGE (``auth_time`` of the session,
OpenID Connect Core 1.0 section 2): older, they raise :class:`ReauthRequired` and the
person signs in again. Revoking an app ends the consent and the refresh tokens it backed
(and so their access tokens); signing out a session ends it as a logout does (its grants
revoked, back-channel logout sent, :func:`idp.sso.sessions.end_session`).

A service of the sso floor: the /account handlers (``idp.http.account``) call it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from idp.sso.factors import check_second_factor, has_passkey, has_totp
from idp.sso.login import LOGIN_FAILED, MAX_PASSWORD_LENGTH, check_password, throttled_message
from idp.sso.outcomes import SignInServices
from idp.sso.passkeys import (
    Ceremony,
    PasskeyRefused,
    begin_registration,
    finish_registration,
    record_passkey_sign_in,
    verify_passkey_assertion,
)
from idp.sso.reauth import recently_signed_in
from idp.sso.security import Attempt, attempt_throttled, consent_revoked, password_checked
from idp.sso.sessions import NewSession, end_session, session_id_of, start_session
from idp.sso.text import N_
from idp.sso.throttle import (
    record_address_success,
    record_login_success,
    reserve_address_attempt,
    reserve_login_attempt,
)
from idp.store.base import AuditEntry, PasskeyRecord, SessionRecord, UserRecord

log = logging.getLogger("idp.sso.account")

WRONG_PASSWORD = N_("Your current password is not right.")
PASSWORDS_DIFFER = N_("The new passwords do not match.")


class ReauthRequired(Exception):
    """The session's sign-in is older than IDP_REAUTH_MAX_AGE: sign in again first."""


class AccountChangeRefused(Exception):
    """A change the person asked for cannot be made; ``message`` says why, for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SessionView:
    """One live browser session of the person, as the page lists it."""

    sid: str
    created_at: float
    last_seen_at: float
    current: bool


@dataclass(frozen=True)
class AppView:
    """An app the person has consented to, with the scopes granted."""

    client_id: str
    client_name: str
    scope: tuple[str, ...]
    granted_at: float


@dataclass(frozen=True)
class AccountOverview:
    """Everything the account page shows."""

    user: UserRecord
    sessions: tuple[SessionView, ...]
    passkeys: tuple[PasskeyRecord, ...]
    apps: tuple[AppView, ...]
    recent_sign_in: bool
    """Whether sensitive changes can be made without signing in again."""


@dataclass(frozen=True)
class AccountSignedIn:
    """A sign-in for the account page succeeded: the new session to set."""

    new_session: NewSession


CODE_NEEDED = (
    "This account has two-step verification: enter your password and the code from your "
    "authenticator app (or a recovery code)."
)


PASSKEY_NEEDED = (
    "This account has two-step verification with a passkey: use Sign in with a passkey "
    "below instead of your password."
)


@dataclass(frozen=True)
class AccountSignInRefused:
    """The account sign-in failed; ``retry_after`` (whole seconds) when throttled."""

    message: str
    username: str | None = None
    retry_after: int | None = None


AccountSignIn = AccountSignedIn | AccountSignInRefused


def require_recent_sign_in(services: SignInServices, session: SessionRecord) -> None:
    """ReauthRequired unless the session's sign-in is recent enough for a sensitive change."""
    if not recently_signed_in(services, session):
        raise ReauthRequired


async def account_overview(
    services: SignInServices, session: SessionRecord, user: UserRecord
) -> AccountOverview:
    """The person's live sessions (this one marked), passkeys and consented apps."""
    store = services.store
    sessions = await store.list_user_sessions(user.id, services.clock())
    apps = []
    for consent in await store.list_consents(user.id):
        client = await store.get_client(consent.client_id)
        name = client.name if client else consent.client_id
        apps.append(AppView(consent.client_id, name, consent.scope, consent.granted_at))
    return AccountOverview(
        user=user,
        sessions=tuple(
            SessionView(s.sid, s.created_at, s.last_seen_at, s.sid == session.sid) for s in sessions
        ),
        passkeys=tuple(await store.list_passkeys(user.id)),
        apps=tuple(apps),
        recent_sign_in=recently_signed_in(services, session),
    )


async def _replace_session(
    services: SignInServices,
    user_id: str,
    session_cookie: str | None,
    *,
    second_factor: bool = False,
    methods: tuple[str, ...] | None = None,
) -> NewSession:
    """A new session for the one who just signed in, ending the browser's earlier one."""
    if session_cookie:
        await end_session(services, session_id_of(session_cookie))
    return await start_session(
        services.store,
        services.settings,
        services.clock,
        user_id,
        second_factor=second_factor,
        methods=methods,
    )


async def sign_in_to_account(
    services: SignInServices,
    *,
    username: str,
    password: str,
    code: str = "",
    client_address: str,
    session_cookie: str | None,
) -> AccountSignIn:
    """Check a typed password for the account page, throttled as :func:`idp.sso.signin.sign_in`
    is, and start a new session when it is right. An account with an authenticator app
    needs its code in the same form (checked, throttled and audited as at sign-in); one
    with only a passkey as its second factor is told to sign in with the passkey
    (:func:`sign_in_to_account_with_passkey`). The account page is never reached with the
    password alone when the account has a second factor."""
    who = {"username": username, "ip": client_address}
    seen = Attempt("account", client_address)
    verdict = await reserve_login_attempt(services.store, services.settings, services.clock, **who)
    if not verdict.allowed:
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="password",
            username=username,
        )  # fmt: skip
        retry = max(1, math.ceil(verdict.delay))
        return AccountSignInRefused(throttled_message(verdict.delay), username, retry)
    user = await check_password(services.store, services.passwords, username, password)
    await password_checked(
        services.events, services.store, seen, username=username, user=user, verdict=verdict
    )
    if user is None:
        return AccountSignInRefused(LOGIN_FAILED, username)
    await record_login_success(services.store, services.settings, services.clock, **who)
    two_factors = await has_totp(services.store, user.id)
    if not two_factors and await has_passkey(services.store, user.id):
        return AccountSignInRefused(PASSKEY_NEEDED, username)
    if two_factors:
        result = await check_second_factor(
            services.store, services.settings, services.clock, user, code, client_address,
            events=services.events, purpose="account",
        )  # fmt: skip
        if not result.accepted:
            if result.retry_after:
                retry = max(1, math.ceil(result.retry_after))
                return AccountSignInRefused(throttled_message(result.retry_after), username, retry)
            return AccountSignInRefused(CODE_NEEDED, username)
    new = await _replace_session(services, user.id, session_cookie, second_factor=two_factors)
    return AccountSignedIn(new)


async def sign_in_to_account_with_passkey(
    services: SignInServices,
    *,
    challenge_id: str,
    credential_json: str,
    browser: str,
    client_address: str,
    session_cookie: str | None,
) -> AccountSignIn:
    """A usernameless passkey sign-in for the account page (as
    :func:`idp.sso.signin.sign_in_with_passkey`, without an authorization request)."""
    clock = services.clock
    verdict = await reserve_address_attempt(
        services.store, services.settings, clock, ip=client_address
    )
    if not verdict.allowed:
        seen = Attempt("account", client_address)
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="passkey"
        )
        retry = max(1, math.ceil(verdict.delay))
        return AccountSignInRefused(throttled_message(verdict.delay), None, retry)
    try:
        verified = await verify_passkey_assertion(
            services.store,
            services.settings,
            clock,
            challenge_id=challenge_id,
            credential_json=credential_json,
            browser=browser,
        )
    except PasskeyRefused as exc:
        await record_passkey_sign_in(services.store, clock(), None, None, exc.reason)
        return AccountSignInRefused(exc.message)
    await record_address_success(services.store, services.settings, clock, ip=client_address)
    await record_passkey_sign_in(services.store, clock(), verified, None)
    new = await _replace_session(services, verified.user.id, session_cookie, methods=verified.amr)
    return AccountSignedIn(new)


async def change_password(
    services: SignInServices,
    session: SessionRecord,
    user: UserRecord,
    *,
    current: str,
    new: str,
    repeated: str,
    client_address: str,
) -> None:
    """Replace the person's password after checking the current one (NIST SP 800-63B
    section 5.1.1.2: a new password at least IDP_PASSWORD_MIN_LENGTH long).

    The check of the current password is throttled as a sign-in is (per account and
    address), so a borrowed session cannot be used to guess it. ReauthRequired for a stale
    sign-in; AccountChangeRefused when throttled, for a wrong current password, new
    passwords that differ, or one too short or too long. Audited as ``user.password``.
    """
    require_recent_sign_in(services, session)
    who = {"username": user.username, "ip": client_address}
    seen = Attempt("password_change", client_address)
    verdict = await reserve_login_attempt(services.store, services.settings, services.clock, **who)
    if not verdict.allowed:
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="password", user=user
        )
        raise AccountChangeRefused(throttled_message(verdict.delay))
    right = len(current) <= MAX_PASSWORD_LENGTH and await services.passwords.verify(
        user.password_hash, current
    )
    await password_checked(
        services.events, services.store, seen, username=user.username,
        user=user if right else None, verdict=verdict,
    )  # fmt: skip
    if not right:
        raise AccountChangeRefused(WRONG_PASSWORD)
    await record_login_success(services.store, services.settings, services.clock, **who)
    if new != repeated:
        raise AccountChangeRefused(PASSWORDS_DIFFER)
    least = services.settings.password_min_length
    if len(new) < least:
        raise AccountChangeRefused(
            N_("The new password needs at least %(least)d characters.", least=least)
        )
    if len(new) > MAX_PASSWORD_LENGTH:
        raise AccountChangeRefused(
            N_("The new password is over %(most)d characters.", most=MAX_PASSWORD_LENGTH)
        )
    await services.store.set_user_password_hash(user.id, await services.passwords.hash(new))
    await _audit(services, user, "user.password", user.id)


async def begin_passkey_registration(
    services: SignInServices, session: SessionRecord, user: UserRecord, *, browser: str
) -> Ceremony:
    """The options to register a new passkey for the person (a sensitive change)."""
    require_recent_sign_in(services, session)
    return await begin_registration(
        services.store, services.settings, services.clock, user, browser=browser
    )


async def add_passkey(
    services: SignInServices,
    session: SessionRecord,
    user: UserRecord,
    *,
    challenge_id: str,
    credential_json: str,
    name: str,
    browser: str,
) -> PasskeyRecord:
    """Verify and keep a new passkey; AccountChangeRefused with the reason when refused."""
    require_recent_sign_in(services, session)
    try:
        return await finish_registration(
            services.store,
            services.settings,
            services.clock,
            user,
            challenge_id=challenge_id,
            credential_json=credential_json,
            name=name,
            browser=browser,
        )
    except PasskeyRefused as exc:
        raise AccountChangeRefused(exc.message) from None


async def remove_passkey(
    services: SignInServices, session: SessionRecord, user: UserRecord, credential_id: bytes
) -> None:
    """Remove one of the person's passkeys; AccountChangeRefused when it is not theirs."""
    require_recent_sign_in(services, session)
    audit = AuditEntry(services.clock(), user.username, "passkey.remove", user.id)
    if not await services.store.delete_passkey(user.id, credential_id, audit):
        raise AccountChangeRefused(N_("There is no such passkey on your account."))


async def sign_out_session(
    services: SignInServices, session: SessionRecord, user: UserRecord, sid: str
) -> None:
    """End another live session of the person (not the current one: that is /logout),
    revoking its grants and telling its clients (:func:`idp.sso.sessions.end_session`)."""
    require_recent_sign_in(services, session)
    live = await services.store.list_user_sessions(user.id, services.clock())
    target = next((s for s in live if s.sid == sid and s.sid != session.sid), None)
    if target is None:
        raise AccountChangeRefused(N_("That session has already ended."))
    await end_session(services, target.id)
    await _audit(services, user, "session.end", sid)


async def sign_out_other_sessions(
    services: SignInServices, session: SessionRecord, user: UserRecord
) -> int:
    """End every live session of the person but the current one; how many ended."""
    require_recent_sign_in(services, session)
    live = await services.store.list_user_sessions(user.id, services.clock())
    ended = 0
    for other in live:
        if other.sid != session.sid and await end_session(services, other.id) is not None:
            ended += 1
    if ended:
        await _audit(services, user, "session.end_others", user.id, {"count": ended})
    return ended


async def revoke_app(
    services: SignInServices, user: UserRecord, client_id: str, client_address: str | None = None
) -> None:
    """End the person's consent to an app and every refresh token it backed; revoking is
    never refused for a stale sign-in (taking access away is always safe). A security
    event (``consent.revoke``), its audit row written with the change."""
    event = consent_revoked(user, client_id, client_address, by="user")
    audit = event.audit_entry(services.clock())
    if not await services.store.revoke_consent(user.id, client_id, services.clock(), audit):
        raise AccountChangeRefused(N_("That app has no access to your account."))
    services.events.counted(event)


async def _audit(
    services: SignInServices,
    user: UserRecord,
    action: str,
    target: str,
    detail: dict[str, object] | None = None,
) -> None:
    entry = AuditEntry(services.clock(), user.username, action, target, detail=detail or {})
    await services.store.record_audit(entry)
