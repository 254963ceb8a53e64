"""Browser sessions at the provider: the single sign-on state behind the session cookie.

The cookie holds a random 256-bit value; the store keeps only its SHA-256, so a copy of
the database cannot be turned into live cookies. ``sid`` is a separate public identifier
carried in ID tokens and logout tokens (OpenID Connect Back-Channel Logout 1.0 section 2.1).

A service of the sso floor: the sign-in and logout services (:mod:`idp.sso.signin`,
:mod:`idp.sso.logout`) and the admin operations call it; it calls the store, the refresh
token rules (:mod:`idp.oauth.refresh_tokens`) and the back-channel notifier.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from idp.clock import Clock
from idp.config import Settings
from idp.identifiers import new_identifier
from idp.oauth.acr import ACR_MFA, ACR_PASSWORD, AMR_MFA, AMR_PASSWORD
from idp.oauth.refresh_tokens import revoke_session_refresh_tokens
from idp.sso.backchannel import BackchannelNotifier, BackchannelTarget
from idp.store.base import ClientRecord, SessionRecord, SessionStore, Store, UserRecord

log = logging.getLogger("idp.sso.sessions")

SESSION_COOKIE = "idp_session"
BROWSER_COOKIE = "idp_browser"


def cookie_name(settings: Settings, base: str) -> str:
    """The cookie name: ``__Host-`` prefixed when the issuer is https (RFC 6265bis 4.1.3.2)."""
    return f"__Host-{base}" if settings.issuer_is_https else base


def session_id_of(cookie_value: str) -> bytes:
    """The stored id of a session: the SHA-256 of its cookie value."""
    return hashlib.sha256(cookie_value.encode()).digest()


class SessionServices(Protocol):
    """The long-lived services a session step needs (an app's ``Services`` has them all)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def notifier(self) -> BackchannelNotifier | None: ...


@dataclass(frozen=True)
class NewSession:
    """A session just started: the cookie value to send once, and the stored row."""

    cookie_value: str
    record: SessionRecord


async def start_session(
    store: SessionStore,
    settings: Settings,
    clock: Clock,
    user_id: str,
    *,
    second_factor: bool = False,
    methods: tuple[str, ...] | None = None,
) -> NewSession:
    """Start a fresh session for a user who has just signed in (a new id every time), with
    a password alone or, if ``second_factor``, a password and a second factor; or with the
    RFC 8176 ``methods`` of another sign-in (a passkey), two factors when they hold ``mfa``."""
    now = clock()
    if methods is not None:
        second_factor = "mfa" in methods
    amr = methods or (AMR_MFA if second_factor else AMR_PASSWORD)
    cookie_value = secrets.token_urlsafe(32)
    record = SessionRecord(
        id=session_id_of(cookie_value),
        sid=new_identifier(16),
        user_id=user_id,
        auth_time=now,
        created_at=now,
        last_seen_at=now,
        idle_expires_at=min(now + settings.session_idle_timeout, now + settings.session_max_age),
        expires_at=now + settings.session_max_age,
        amr=amr,
        acr=ACR_MFA if second_factor else ACR_PASSWORD,
        second_factor_at=now if second_factor else None,
    )
    await store.create_session(record)
    return NewSession(cookie_value, record)


async def resume_session(
    store: Store, settings: Settings, clock: Clock, cookie_value: str | None
) -> tuple[SessionRecord, UserRecord] | None:
    """The live session the cookie names and its user, with the idle timer restarted.

    None when there is no cookie, the session is unknown, ended or timed out, or the user
    is gone or disabled.
    """
    if not cookie_value or len(cookie_value) > 128:
        return None
    session = await store.get_session(session_id_of(cookie_value))
    now = clock()
    if session is None or not session.is_live(now):
        return None
    user = await store.get_user(session.user_id)
    if user is None or user.disabled:
        return None
    await store.touch_session(session.id, now, now + settings.session_idle_timeout)
    return session, user


async def session_ended(
    store: Store,
    clock: Clock,
    session: SessionRecord,
    notifier: BackchannelNotifier | None = None,
) -> None:
    """Everything that follows the end of a session; called once per ended session.

    The grants bound to ``session.sid`` end (their refresh and access tokens; not
    offline_access ones), and the clients that used the session and registered a
    back-channel logout URI are sent a logout token for ``session.sid`` and
    ``session.user_id`` (OpenID Connect Back-Channel Logout 1.0 section 2.5), in the
    background through ``notifier``.
    """
    revoked = await revoke_session_refresh_tokens(store, session.sid, clock=clock)
    client_ids = await store.list_session_clients(session.id)
    clients = await backchannel_clients(store, client_ids)
    if notifier is not None and clients:
        notifier.notify(
            sid=session.sid,
            sub=session.user_id,
            targets=[
                BackchannelTarget(c.client_id, c.backchannel_logout_uri or "", c.id_token_alg)
                for c in clients
            ],
        )
    log.info(
        "session ended: %d client(s), %d with back-channel logout, %d refresh token(s) revoked",
        len(client_ids),
        len(clients),
        revoked,
    )


async def backchannel_clients(store: Store, client_ids: list[str]) -> list[ClientRecord]:
    """Those of the session's clients that take back-channel logout."""
    found = []
    for client_id in client_ids:
        client = await store.get_client(client_id)
        if client is not None and client.backchannel_logout_uri:
            found.append(client)
    return found


async def end_session(services: SessionServices, session_id: bytes) -> SessionRecord | None:
    """End one session (RP-initiated logout, a new sign-in); the session if this call ended it."""
    ended = await services.store.end_session(session_id, services.clock())
    if ended is not None:
        await session_ended(services.store, services.clock, ended, services.notifier)
    return ended


async def end_user_sessions(
    store: Store,
    clock: Clock,
    user_id: str,
    notifier: BackchannelNotifier | None = None,
) -> list[SessionRecord]:
    """End every session of a user (when the account is disabled)."""
    ended = await store.end_user_sessions(user_id, clock())
    for session in ended:
        await session_ended(store, clock, session, notifier)
    return ended
