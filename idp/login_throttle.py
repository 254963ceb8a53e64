"""Brute-force defence for the login form: failures counted per account and per client address.

The counters live in the store, so every replica sees the same ones. The rules are in
:mod:`idp.throttle_policy`; accounts use IDP_LOGIN_MAX_FAILURES, client addresses
IDP_LOGIN_MAX_FAILURES_PER_IP, both within IDP_LOGIN_FAILURE_WINDOW and locked for
IDP_LOGIN_LOCK_DURATION. The account key is a hash of the normalised username (unknown
usernames are counted the same way, so the throttle tells nothing about which exist); an
IPv6 client is counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata

from idp.clock import Clock
from idp.config import Settings
from idp.store.base import AuditEntry, Store
from idp.throttle_policy import (
    ThrottlePolicy,
    ThrottleVerdict,
    combine,
    lock_until,
    verdict,
)

__all__ = [
    "ThrottleVerdict",
    "account_key",
    "clear_account",
    "ip_key",
    "login_allowed",
    "record_login_failure",
    "record_login_success",
]


def normalise_username(username: str) -> str:
    """The form under which failures of one account are counted: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def account_key(username: str) -> str:
    """The counter key of an account (its normalised username, hashed)."""
    digest = hashlib.sha256(normalise_username(username).encode()).hexdigest()
    return f"account:{digest}"


def ip_key(ip: str) -> str:
    """The counter key of a client address: the IPv4 address, or the IPv6 /64 around it."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "ip:other:" + hashlib.sha256(ip.encode()).hexdigest()[:32]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def _policies(settings: Settings) -> tuple[ThrottlePolicy, ThrottlePolicy]:
    account = ThrottlePolicy(
        settings.login_max_failures, settings.login_failure_window, settings.login_lock_duration
    )
    address = ThrottlePolicy(
        settings.login_max_failures_per_ip,
        settings.login_failure_window,
        settings.login_lock_duration,
    )
    return account, address


async def login_allowed(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> ThrottleVerdict:
    """Whether a password for ``username`` from ``ip`` may be checked now.

    Refused while either the account or the address is paused or locked; ``retry_at`` is
    then the moment both allow it again (for the page to say), ``delay`` the seconds to it.
    """
    now = clock()
    account, address = account_key(username), ip_key(ip)
    counters = {c.key: c for c in await store.get_login_counters([account, address], now)}
    account_policy, address_policy = _policies(settings)
    return combine(
        [
            verdict(counters.get(account), now, account_policy),
            verdict(counters.get(address), now, address_policy),
        ]
    )


async def record_login_failure(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> None:
    """Count a failed login against the account and the address, locking either when due."""
    now = clock()
    for key, policy in zip((account_key(username), ip_key(ip)), _policies(settings), strict=True):
        counter = await store.add_login_failure(key, now, policy.window)
        until = lock_until(counter, now, policy)
        if until is not None:
            await store.lock_login_key(key, until)


async def record_login_success(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> None:
    """Forget the account's failures after a successful login (the address keeps its count)."""
    await store.clear_login_failures(account_key(username))


async def clear_account(store: Store, username: str, audit: AuditEntry | None = None) -> bool:
    """Unlock an account by forgetting its failures; say whether it had any.

    ``audit`` (the administrator's ``user.unlock``) is recorded only when it had some.
    """
    return await store.clear_login_failures(account_key(username), audit)
