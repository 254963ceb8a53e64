"""The device verification page's service (RFC 8628 section 3.3): a signed-in person types
(or confirms) a user code, sees which application asks for what, and approves or denies.

Every typed code is counted against the client address and the session before it is
looked up (:func:`idp.sso.throttle.reserve_user_code_attempt`), as a wrong code until it
is found: guessing codes pauses, then locks, the guesser (section 5.1). An approval
needs the session's sign-in to meet the client's rule (a second factor for a client that
requires one), grants the scopes as a consent does, and is written once; a denial too.
A service of the sso floor: the /device handlers call it with plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from idp.oauth.device import normalise_user_code, user_code_hash
from idp.sso.login import throttled_message
from idp.sso.outcomes import SignInServices
from idp.sso.security import (
    Attempt,
    attempt_throttled,
    consent_granted,
    device_decided,
    user_code_refused,
)
from idp.sso.text import N_
from idp.sso.throttle import record_user_code_success, reserve_user_code_attempt
from idp.store.base import ClientRecord, DeviceApproval, DeviceCodeRecord, SessionRecord, UserRecord

WRONG_CODE = N_("That code is not valid. Check the code shown on your device and try again.")
DEVICE_GONE = N_("This request has expired or was already answered. Start again on your device.")
NEEDS_SECOND_FACTOR = N_(
    "This application needs two-step verification. Sign in again with your second factor, "
    "then enter the code once more."
)


@dataclass(frozen=True, slots=True)
class DeviceFound:
    """A pending device request the person may now approve or deny."""

    device: DeviceCodeRecord
    client: ClientRecord


@dataclass(frozen=True, slots=True)
class DeviceRefused:
    """The code was wrong, gone or not allowed: say why; ``retry_after`` when throttled."""

    message: str
    retry_after: int = 0


async def find_device_request(
    services: SignInServices,
    session: SessionRecord,
    user: UserRecord,
    typed: str,
    client_address: str,
) -> DeviceFound | DeviceRefused:
    """The pending device request whose user code was typed, counted by the throttle; a
    wrong code is a ``device.user_code`` security event, a throttled one ``signin.throttled``
    (step ``user_code``)."""
    who = {"ip": client_address, "sid": session.sid}
    verdict = await reserve_user_code_attempt(
        services.store, services.settings, services.clock, **who
    )
    if not verdict.allowed:
        seen = Attempt("device", client_address)
        await attempt_throttled(
            services.events, services.store, seen, verdict=verdict, step="user_code", user=user
        )
        return DeviceRefused(throttled_message(verdict.delay), max(1, math.ceil(verdict.delay)))
    normalised = normalise_user_code(typed)
    device = (
        await services.store.find_device_code(user_code_hash(normalised), services.clock())
        if normalised is not None
        else None
    )
    if device is None:
        await services.events.record(user_code_refused(user, client_address))
        return DeviceRefused(WRONG_CODE)
    await record_user_code_success(services.store, services.settings, services.clock, **who)
    client = await services.store.get_client(device.client_id)
    if client is None:
        return DeviceRefused(DEVICE_GONE)
    refused = check_sign_in_suffices(client, session)
    return refused or DeviceFound(device, client)


def check_sign_in_suffices(client: ClientRecord, session: SessionRecord) -> DeviceRefused | None:
    """A client that requires a second factor is approved only from a session that gave one."""
    if client.require_mfa and session.second_factor_at is None:
        return DeviceRefused(NEEDS_SECOND_FACTOR)
    return None


async def decide_device_request(
    services: SignInServices,
    session: SessionRecord,
    user: UserRecord,
    device_id: str,
    *,
    approve: bool,
    client_id: str,
    scope: tuple[str, ...],
    client_address: str,
) -> DeviceRefused | None:
    """Write the person's decision on a pending device request, once (section 3.3).

    The decision is a ``device.approve`` or ``device.deny`` security event. An approval
    remembers the scopes as a consent (``consent.grant``) and the client as one that received
    tokens through the session (for back-channel logout). DeviceRefused when
    the request is gone, already answered, or the client now needs more than this sign-in.
    """
    client = await services.store.get_client(client_id)
    if client is None:
        return DeviceRefused(DEVICE_GONE)
    if approve and (refused := check_sign_in_suffices(client, session)) is not None:
        return refused
    now = services.clock()
    decision = DeviceApproval(
        approved=approve,
        user_id=user.id,
        sid=session.sid,
        auth_time=session.auth_time,
        amr=session.amr,
        acr=session.acr,
        now=now,
    )
    if not await services.store.decide_device_code(device_id, decision):
        return DeviceRefused(DEVICE_GONE)
    await services.events.record(
        device_decided(user, client_id, scope, client_address, approved=approve)
    )
    if approve:
        await services.store.save_consent(user.id, client_id, scope, now)
        await services.events.record(consent_granted(user, client_id, scope, client_address))
        await services.store.add_session_client(session.id, client_id, now)
    return None
