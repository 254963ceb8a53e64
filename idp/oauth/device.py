"""Device codes and user codes (RFC 8628 sections 3.2, 3.4, 3.5, 6.1): how they are made,
typed and stored, and the rule each poll of the token endpoint follows.

A device code has 256 random bits and is kept as its SHA-256. A user code is 8 letters of
an alphabet without vowels or look-alikes (section 6.1), shown as ``XXXX-XXXX``; it is
compared without case, dash or spaces. Its 34 bits are guessable only slowly: the
verification page counts every wrong code against the address and the session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from enum import Enum

from idp.identifiers import new_identifier
from idp.store.base import DeviceCodeRecord, DeviceCodeStatus

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
DEVICE_CODE_LIFETIME = 600
"""Seconds a device code lives (``expires_in``, section 3.2)."""
POLL_INTERVAL = 5
"""The seconds a client waits between polls, at first (``interval``, section 3.2)."""
SLOW_DOWN_STEP = 5
"""The seconds a slow_down adds to the interval (section 3.5)."""
MAX_DEVICE_CODE_LENGTH = 256


def new_device_code() -> str:
    """A device code: 256 random bits (section 5.2)."""
    return new_identifier(32)


def new_user_code() -> str:
    """A user code as shown: 8 letters of USER_CODE_ALPHABET, ``XXXX-XXXX`` (section 6.1)."""
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{letters[:4]}-{letters[4:]}"


def normalise_user_code(typed: str) -> str | None:
    """The user code as compared: upper case, without dashes or spaces; None when it cannot
    be one (wrong length or a letter outside the alphabet)."""
    letters = "".join(c for c in typed.upper() if c not in "- \t")
    if len(letters) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return letters


def user_code_hash(normalised: str) -> bytes:
    """The stored form of a normalised user code: its SHA-256."""
    return hashlib.sha256(b"user_code:" + normalised.encode()).digest()


def device_code_hash(device_code: str) -> bytes:
    """The stored form of a device code: its SHA-256."""
    return hashlib.sha256(device_code.encode()).digest()


class PollOutcome(Enum):
    """What one poll of the token endpoint gets (RFC 8628 section 3.5)."""

    EXPIRED = "expired_token"
    WRONG_CLIENT = "wrong_client"
    REUSED = "reused"
    DENIED = "access_denied"
    SLOW_DOWN = "slow_down"
    PENDING = "authorization_pending"
    REDEEMED = "redeemed"


def poll_device_code(
    device: DeviceCodeRecord, client_id: str, now: float
) -> tuple[PollOutcome, DeviceCodeRecord]:
    """The outcome of one poll by ``client_id`` at ``now``, and the row to write after it.

    In order: an expired code is expired_token; a code of another client is refused and
    left alone; a redeemed one is refused (one redemption only); a denied one is
    access_denied; an approved one is redeemed now. A pending one is slow_down when polled
    sooner than its interval after the last poll (the interval then grows by
    SLOW_DOWN_STEP), else authorization_pending; either way the poll time is kept.
    """
    if now >= device.expires_at:
        return PollOutcome.EXPIRED, device
    if device.client_id != client_id:
        return PollOutcome.WRONG_CLIENT, device
    if device.status == DeviceCodeStatus.REDEEMED.value:
        return PollOutcome.REUSED, device
    if device.status == DeviceCodeStatus.DENIED.value:
        return PollOutcome.DENIED, replace(device, last_polled_at=now)
    if device.status == DeviceCodeStatus.APPROVED.value:
        redeemed = replace(
            device, status=DeviceCodeStatus.REDEEMED.value, redeemed_at=now, last_polled_at=now
        )
        return PollOutcome.REDEEMED, redeemed
    last = device.last_polled_at
    if last is not None and now - last < device.poll_interval:
        slower = replace(device, poll_interval=device.poll_interval + SLOW_DOWN_STEP)
        return PollOutcome.SLOW_DOWN, replace(slower, last_polled_at=now)
    return PollOutcome.PENDING, replace(device, last_polled_at=now)
