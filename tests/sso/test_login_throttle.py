"""The login throttle's pure rules (its counters in a store: tests/store/test_login_counters.py)."""

from __future__ import annotations

from idp.sso.throttle import (
    account_key,
    ip_key,
    pair_key,
)
from idp.sso.throttle_policy import (
    ThrottlePolicy,
    ThrottleVerdict,
    counted,
    delay_after,
    refunded,
    verdict,
)
from idp.store.base import LoginCounter
from tests.support.clocks import T0

POLICY = ThrottlePolicy(max_failures=5, window=900, lock_duration=900)


def counter(failures: int, last: float = T0, locked_until: float | None = None) -> LoginCounter:
    return LoginCounter("k", failures, T0 - 100, last, locked_until, T0 + 800)


def test_delays_double_after_the_allowance_and_are_capped() -> None:
    assert [delay_after(n, 5) for n in range(1, 11)] == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert delay_after(40, 5) == 60


def test_verdict_of_one_counter() -> None:
    assert verdict(None, T0, POLICY).allowed
    assert verdict(counter(4), T0, POLICY).allowed
    assert verdict(counter(6), T0 + 1, POLICY) == ThrottleVerdict(False, 1.0, T0 + 2)
    assert verdict(counter(6), T0 + 2, POLICY).allowed
    locked = verdict(counter(10, locked_until=T0 + 900), T0 + 100, POLICY)
    assert locked == ThrottleVerdict(False, 800.0, T0 + 900)
    expired = LoginCounter("k", 10, T0, T0, T0 + 900, T0 + 900)
    assert verdict(expired, T0 + 900, POLICY).allowed


def test_counting_locks_when_due_and_a_refund_lifts_that_lock() -> None:
    pause_only = ThrottlePolicy(max_failures=5, window=900, lock_duration=None)
    assert counted("k", None, T0, POLICY) == LoginCounter("k", 1, T0, T0, None, T0 + 900)
    tenth = counted("k", counter(9), T0 + 5, POLICY)
    assert (tenth.failures, tenth.locked_until, tenth.expires_at) == (10, T0 + 905, T0 + 905)
    # A key without a lock duration only ever pauses, however many failures.
    many = counted("k", counter(99), T0 + 5, pause_only)
    assert many.locked_until is None
    assert verdict(many, T0 + 5, pause_only) == ThrottleVerdict(False, 60.0, T0 + 65)
    # The attempt that brought the lock on succeeded: the lock goes with it.
    back = refunded(tenth, POLICY)
    assert back is not None
    assert (back.failures, back.locked_until, back.expires_at) == (9, None, T0 + 800)
    assert refunded(counted("k", None, T0, POLICY), POLICY) is None


def test_username_and_address_normalisation() -> None:
    assert account_key("Ada") == account_key(" ada ") == account_key("\uff21\uff24\uff21")
    assert account_key("ada") != account_key("bob")
    assert "ada" not in account_key("ada")
    assert pair_key("ADA", "192.0.2.1") == account_key("ada") + "|ip:192.0.2.1"
    assert ip_key("2001:db8::1") == ip_key("2001:db8::ffff:1") == "ip:2001:db8::/64"
    assert ip_key("::ffff:192.0.2.7") == ip_key("192.0.2.7") == "ip:192.0.2.7"
    assert ip_key("not an address").startswith("ip:other:")
