"""The sign-in's security events: each password check, throttled attempt and lock, as the
services see them (:mod:`idp.store.security_events` writes and counts them).

Every place that checks a password (the sign-in for a client, the account page, a
re-authentication, a password change) reports through these few calls, so the trail says
the same thing whichever page the attempt came from; ``purpose`` tells them apart. The
person is named by the account the typed username belongs to; a username that names no
account is never written (it may be a password typed in the wrong field).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from idp.sso.login import MAX_USERNAME_LENGTH
from idp.sso.throttle import ThrottleVerdict
from idp.store.base import Store, UserRecord
from idp.store.security_events import ANONYMOUS, SecurityEvent, SecurityEventSink

SIGN_IN = "signin.password"
THROTTLED = "signin.throttled"
LOCKED = "account.locked"
CONSENT_GRANT = "consent.grant"
CONSENT_REVOKE = "consent.revoke"
DEVICE_APPROVE = "device.approve"
DEVICE_DENY = "device.deny"
DEVICE_USER_CODE = "device.user_code"


async def named(store: Store, username: str) -> tuple[str, str | None]:
    """The actor and subject an attempt for ``username`` is recorded under: the account's
    username and id, or ``anonymous`` and None when no account has that name."""
    typed = username.strip()
    if not typed or len(typed) > MAX_USERNAME_LENGTH:
        return ANONYMOUS, None
    user = await store.get_user_by_username(typed)
    return (user.username, user.id) if user is not None else (ANONYMOUS, None)


@dataclass(frozen=True)
class Attempt:
    """Where an attempt comes from: the page it serves (``purpose``: ``authorize``,
    ``account``, ``reauth``, ``password_change``), the client address and the client_id."""

    purpose: str
    address: str
    client: str | None = None


async def attempt_throttled(
    events: SecurityEventSink,
    store: Store,
    seen: Attempt,
    *,
    verdict: ThrottleVerdict,
    step: str,
    username: str | None = None,
    user: UserRecord | None = None,
) -> None:
    """Report an attempt the throttle refused before anything was checked (counted per
    address and minute). ``step`` is ``password``, ``second_factor``, ``passkey`` or
    ``user_code`` (the device verification page)."""
    actor: str = ANONYMOUS
    subject: str | None = None
    if user is not None:
        actor, subject = user.username, user.id
    elif username is not None:
        actor, subject = await named(store, username)
    retry = max(1, math.ceil(verdict.delay))
    detail = {"step": step, "purpose": seen.purpose, "retry_after": retry}
    event = SecurityEvent(
        THROTTLED, "failure", actor, subject, seen.client, seen.address, detail, True
    )
    await events.record(event)


async def password_checked(
    events: SecurityEventSink,
    store: Store,
    seen: Attempt,
    *,
    username: str,
    user: UserRecord | None,
    verdict: ThrottleVerdict,
) -> None:
    """Report a checked password: ``user`` when it was right, else None (a failure, counted
    per address and minute), and any lock the failed attempt brought on."""
    detail = {"purpose": seen.purpose}
    if user is not None:
        await events.record(
            SecurityEvent(
                SIGN_IN, "success", user.username, user.id, seen.client, seen.address, detail
            )
        )
        return
    actor, subject = await named(store, username)
    failed = SecurityEvent(
        SIGN_IN, "failure", actor, subject, seen.client, seen.address, detail, True
    )
    await events.record(failed)
    await locked(events, seen, actor, subject, verdict)


async def locked(
    events: SecurityEventSink,
    seen: Attempt,
    actor: str,
    subject: str | None,
    verdict: ThrottleVerdict,
) -> None:
    """Report the locks a failed attempt brought on (``verdict.locked``), if any."""
    if not verdict.locked:
        return
    detail = {"locked": list(verdict.locked), "purpose": seen.purpose}
    await events.record(
        SecurityEvent(LOCKED, "failure", actor, subject, seen.client, seen.address, detail)
    )


def consent_granted(
    user: UserRecord, client_id: str, scope: Sequence[str], address: str | None
) -> SecurityEvent:
    """The event of a person allowing a client the scopes asked for (``consent.grant``)."""
    detail = {"scope": " ".join(scope)}
    return SecurityEvent(
        CONSENT_GRANT, "success", user.username, user.id, client_id, address, detail
    )


def consent_revoked(
    user: UserRecord, client_id: str, address: str | None, *, by: str, actor: str | None = None
) -> SecurityEvent:
    """The event of a consent ended (``consent.revoke``), ``by`` ``user`` on the account
    page or ``admin``; ``actor`` names an administrator (default: the person).

    Its ``audit_entry`` goes to ``Store.revoke_consent`` with the change, then the sink
    counts it (``SecurityEventSink.counted``)."""
    return SecurityEvent(
        CONSENT_REVOKE,
        "success",
        actor or user.username,
        user.id,
        client_id,
        address,
        {"by": by},
        target=client_id,
    )


def device_decided(
    user: UserRecord, client_id: str, scope: Sequence[str], address: str, *, approved: bool
) -> SecurityEvent:
    """The event of a person allowing (``device.approve``) or denying (``device.deny``) a
    device's request on the verification page (RFC 8628 section 3.3)."""
    action = DEVICE_APPROVE if approved else DEVICE_DENY
    detail = {"scope": " ".join(scope)}
    return SecurityEvent(action, "success", user.username, user.id, client_id, address, detail)


def user_code_refused(user: UserRecord, address: str) -> SecurityEvent:
    """The event of a wrong user code typed on the verification page (``device.user_code``),
    counted per address and minute, since a stream of them is someone guessing codes
    (RFC 8628 section 5.1)."""
    return SecurityEvent(
        DEVICE_USER_CODE, "failure", user.username, user.id, None, address, {}, True
    )
