"""Brute-force defence for the login form: attempts counted per account, address and both.

The counters live in the store, so every replica sees the same ones, and an attempt is
counted (as a failure, until it succeeds) in one atomic store step before its password is
checked: of N parallel guesses only as many as the allowance reach the check. The rules
are in :mod:`idp.sso.throttle_policy`. Three keys per attempt, within IDP_LOGIN_FAILURE_WINDOW:

- the account and the client address together: IDP_LOGIN_MAX_FAILURES, then paused, then
  locked for IDP_LOGIN_LOCK_DURATION: the guesser is shut out;
- the client address: IDP_LOGIN_MAX_FAILURES_PER_IP, paused, then locked the same way:
  one address trying many accounts;
- the account alone: IDP_LOGIN_MAX_FAILURES, then only paused (at most 60 s), never
  locked, so someone who merely knows a username cannot keep its owner out for long.

The account key is a hash of the canonical username (:mod:`idp.store.usernames`; unknown
usernames are counted the same way, so the throttle tells nothing about which exist); an
IPv6 client is counted per /64, the block one subscriber usually holds.

Called by the sign-in service (:mod:`idp.sso.signin`) and by the admin unlock; it calls the
store's atomic counter update with the rules of :mod:`idp.sso.throttle_policy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from idp.clock import Clock
from idp.config import Settings
from idp.sso.throttle_policy import ThrottlePolicy, ThrottleVerdict, reserve, settle_success
from idp.store.base import AuditEntry, LoginCounter, LoginCounterChange, Store
from idp.store.security_events import address_block
from idp.store.usernames import canonical_username

__all__ = [
    "ThrottleVerdict",
    "account_key",
    "clear_account",
    "ip_key",
    "key_kind",
    "pair_key",
    "record_address_success",
    "record_login_success",
    "record_second_factor_success",
    "record_user_code_success",
    "reserve_address_attempt",
    "reserve_login_attempt",
    "reserve_second_factor_attempt",
    "reserve_user_code_attempt",
]


def account_key(username: str) -> str:
    """The counter key of an account (its canonical username, hashed)."""
    digest = hashlib.sha256(canonical_username(username).encode()).hexdigest()
    return f"account:{digest}"


def pair_key(username: str, ip: str) -> str:
    """The counter key of one account tried from one address (under the account's key)."""
    return f"{account_key(username)}|{ip_key(ip)}"


def ip_key(ip: str) -> str:
    """The counter key of a client address: the IPv4 address, or the IPv6 /64 around it."""
    return f"ip:{address_block(ip)}"


def _keys(settings: Settings, username: str, ip: str) -> list[tuple[str, ThrottlePolicy]]:
    """The three keys an attempt counts against, each with its policy (see the module)."""
    window, lock = settings.login_failure_window, settings.login_lock_duration
    return [
        (pair_key(username, ip), ThrottlePolicy(settings.login_max_failures, window, lock)),
        (ip_key(ip), ThrottlePolicy(settings.login_max_failures_per_ip, window, lock)),
        (account_key(username), ThrottlePolicy(settings.login_max_failures, window, None)),
    ]


async def reserve_login_attempt(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> ThrottleVerdict:
    """Whether a password for ``username`` from ``ip`` may be checked now, counting it if so.

    Allowed, the attempt already counts as a failure against every key (one atomic store
    step); :func:`record_login_success` gives it back if the password is right. Refused
    (nothing counted), ``retry_at`` is the moment every key allows it again and ``delay``
    the seconds to it.
    """
    return await _reserve(store, _keys(settings, username, ip), clock())


async def record_login_success(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> None:
    """Forget the account's and the pair's failures; give the address its reservation back."""
    pair, address, account = _keys(settings, username, ip)
    await _settle(store, [pair, account], [address], clock())


def _second_factor_keys(
    settings: Settings, username: str, ip: str
) -> list[tuple[str, ThrottlePolicy]]:
    """The keys a second-factor attempt counts against: the account (under its login key,
    so an unlock forgets them too) and the account with the address lock, as someone
    guessing codes already knows the password; the address counts with password attempts."""
    window, lock = settings.login_failure_window, settings.login_lock_duration
    factor = f"{account_key(username)}|mfa"
    return [
        (f"{factor}|{ip_key(ip)}", ThrottlePolicy(settings.login_max_failures, window, lock)),
        (ip_key(ip), ThrottlePolicy(settings.login_max_failures_per_ip, window, lock)),
        (factor, ThrottlePolicy(settings.login_max_failures, window, lock)),
    ]


async def reserve_second_factor_attempt(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> ThrottleVerdict:
    """As :func:`reserve_login_attempt`, for a second-factor code of ``username``."""
    return await _reserve(store, _second_factor_keys(settings, username, ip), clock())


async def record_second_factor_success(
    store: Store, settings: Settings, clock: Clock, *, username: str, ip: str
) -> None:
    """As :func:`record_login_success`, for a right second-factor code."""
    pair, address, account = _second_factor_keys(settings, username, ip)
    await _settle(store, [pair, account], [address], clock())


async def clear_account(store: Store, username: str, audit: AuditEntry | None = None) -> bool:
    """Unlock an account by forgetting its failures, from every address; say whether it had any.

    ``audit`` (the administrator's ``user.unlock``) is recorded only when it had some.
    """
    return await store.clear_login_failures(account_key(username), audit)


def _address(settings: Settings, ip: str) -> tuple[str, ThrottlePolicy]:
    """The address key alone, with its policy (a sign-in that names no account)."""
    policy = ThrottlePolicy(
        settings.login_max_failures_per_ip,
        settings.login_failure_window,
        settings.login_lock_duration,
    )
    return ip_key(ip), policy


async def reserve_address_attempt(
    store: Store, settings: Settings, clock: Clock, *, ip: str
) -> ThrottleVerdict:
    """Whether a sign-in that names no account (a passkey) may be checked now from ``ip``.

    As :func:`reserve_login_attempt` with the address key only: the attempt counts against
    the address's allowance (shared with passwords) until it succeeds.
    """
    return await _reserve(store, [_address(settings, ip)], clock())


async def record_address_success(
    store: Store, settings: Settings, clock: Clock, *, ip: str
) -> None:
    """Give the address its reservation back after a sign-in that names no account."""
    await _settle(store, [], [_address(settings, ip)], clock())


def _user_code_keys(settings: Settings, ip: str, sid: str) -> list[tuple[str, ThrottlePolicy]]:
    """The keys a typed user code (RFC 8628 section 5.1) counts against: the address, with
    the address allowance of sign-ins, and the signed-in session, with an account's."""
    window, lock = settings.login_failure_window, settings.login_lock_duration
    session = hashlib.sha256(sid.encode()).hexdigest()
    return [
        (f"device:{ip_key(ip)}", ThrottlePolicy(settings.login_max_failures_per_ip, window, lock)),
        (f"device:session:{session}", ThrottlePolicy(settings.login_max_failures, window, lock)),
    ]


async def reserve_user_code_attempt(
    store: Store, settings: Settings, clock: Clock, *, ip: str, sid: str
) -> ThrottleVerdict:
    """Whether a user code typed from ``ip`` in session ``sid`` may be looked up now,
    counting it (as a wrong code, until it is found) if so; as :func:`reserve_login_attempt`."""
    return await _reserve(store, _user_code_keys(settings, ip, sid), clock())


async def record_user_code_success(
    store: Store, settings: Settings, clock: Clock, *, ip: str, sid: str
) -> None:
    """Give a user code that was found its reservations back."""
    await _settle(store, [], _user_code_keys(settings, ip, sid), clock())


async def _reserve(
    store: Store, keys: list[tuple[str, ThrottlePolicy]], now: float
) -> ThrottleVerdict:
    """Count one attempt against every key if all allow it, in one atomic store step."""
    decided: list[ThrottleVerdict] = []

    def update(live: Mapping[str, LoginCounter]) -> LoginCounterChange:
        decision, change = reserve(live, keys, now)
        decided.append(decision)
        return change

    await store.update_login_counters([key for key, _ in keys], now, update)
    decision = decided[-1]
    return replace(decision, locked=tuple(key_kind(key) for key in decision.locked))


def key_kind(key: str) -> str:
    """What a counter key counts, in words fit for the audit trail (the key itself holds a
    hash of the username): ``account``, ``address``, ``account_and_address``,
    ``second_factor`` or ``second_factor_and_address``."""
    if key.startswith("device:"):
        return "user_code_session" if key.startswith("device:session:") else "user_code_address"
    if key.startswith("ip:"):
        return "address"
    if "|mfa|" in key:
        return "second_factor_and_address"
    if key.endswith("|mfa"):
        return "second_factor"
    return "account_and_address" if "|ip:" in key else "account"


async def _settle(
    store: Store,
    forgotten: list[tuple[str, ThrottlePolicy]],
    returned: list[tuple[str, ThrottlePolicy]],
    now: float,
) -> None:
    """After a success: forget the failures of ``forgotten`` keys and give ``returned`` keys
    their reservation back, in one atomic store step."""

    def update(live: Mapping[str, LoginCounter]) -> LoginCounterChange:
        return settle_success(live, [key for key, _ in forgotten], returned)

    keys = [key for key, _ in forgotten] + [key for key, _ in returned]
    await store.update_login_counters(keys, now, update)
