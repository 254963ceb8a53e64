"""The login throttle's rules, as pure functions of failure counters and the time.

Per key (an account, a client address, or the pair of both) and within a window that
starts at the first failure: up to ``max_failures`` failures cost nothing; each further
failure doubles a pause before the next attempt may be checked (1 s, 2 s, 4 s ... at most
60 s); a key that can lock is locked for ``lock_duration`` at twice ``max_failures``, and
when the lock ends the count starts again from zero. OWASP Authentication Cheat Sheet,
"Login Throttling".

An attempt is counted before its password is checked (:func:`reserve`): it reserves its
place, as a failure, in every key at once, and only if every key allows it; a success
gives the reservation back (:func:`settle_success`). So attempts in flight count as
failures, and parallel guesses cannot outrun the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from idp.store.base import LoginCounter, LoginCounterChange

MAX_DELAY = 60.0


@dataclass(frozen=True)
class ThrottleVerdict:
    """Whether a password may be checked now; if not, how long to wait and until when."""

    allowed: bool
    delay: float
    retry_at: float | None
    locked: tuple[str, ...] = ()
    """The keys this attempt's count locked (they were not locked before it)."""


ALLOWED = ThrottleVerdict(allowed=True, delay=0.0, retry_at=None)


@dataclass(frozen=True)
class ThrottlePolicy:
    """The thresholds for one kind of key (accounts, or client addresses)."""

    max_failures: int
    window: float
    lock_duration: float | None
    """None: the key only ever pauses (at most MAX_DELAY), it is never locked."""

    @property
    def lock_after(self) -> int:
        """The failure count that locks the key: twice the free allowance."""
        return 2 * self.max_failures


def delay_after(failures: int, max_failures: int) -> float:
    """The pause owed after ``failures`` failures: none up to the allowance, then doubling."""
    if failures < max_failures:
        return 0.0
    return min(2.0 ** (failures - max_failures), MAX_DELAY)


def verdict(counter: LoginCounter | None, now: float, policy: ThrottlePolicy) -> ThrottleVerdict:
    """What one key's counter allows at ``now``."""
    if counter is None or counter.expires_at <= now:
        return ALLOWED
    if counter.locked_until is not None and now < counter.locked_until:
        return _refused(now, counter.locked_until)
    pause = delay_after(counter.failures, policy.max_failures)
    if pause and now < counter.last_failure_at + pause:
        return _refused(now, counter.last_failure_at + pause)
    return ALLOWED


def counted(
    key: str, counter: LoginCounter | None, now: float, policy: ThrottlePolicy
) -> LoginCounter:
    """The counter with one more attempt counted at ``now``, locked when that makes it due."""
    if counter is None:
        counter = LoginCounter(key, 0, now, now, None, now + policy.window)
    after = replace(counter, failures=counter.failures + 1, last_failure_at=now)
    if policy.lock_duration is not None and after.failures >= policy.lock_after:
        until = now + policy.lock_duration
        after = replace(after, locked_until=until, expires_at=until)
    return after


def refunded(counter: LoginCounter, policy: ThrottlePolicy) -> LoginCounter | None:
    """The counter with one reserved attempt given back; None when nothing is left.

    A lock that the attempt itself brought on is lifted again (the window's end becomes
    the counter's expiry once more).
    """
    failures = counter.failures - 1
    if failures <= 0:
        return None
    after = replace(counter, failures=failures)
    if counter.locked_until is not None and failures < policy.lock_after:
        after = replace(
            after, locked_until=None, expires_at=counter.window_started_at + policy.window
        )
    return after


def reserve(
    counters: Mapping[str, LoginCounter],
    keys: Sequence[tuple[str, ThrottlePolicy]],
    now: float,
) -> tuple[ThrottleVerdict, LoginCounterChange]:
    """Whether an attempt may be checked now and, if so, the counters with it counted.

    ``counters`` are the live ones among ``keys``. Refused when any key refuses (nothing is
    counted then); allowed, the attempt counts as a failure against every key.
    """
    decision = combine([verdict(counters.get(key), now, policy) for key, policy in keys])
    if not decision.allowed:
        return decision, LoginCounterChange()
    put = tuple(counted(key, counters.get(key), now, policy) for key, policy in keys)
    locked = tuple(c.key for c in put if _newly_locked(counters.get(c.key), c, now))
    return replace(decision, locked=locked), LoginCounterChange(put=put)


def _newly_locked(before: LoginCounter | None, after: LoginCounter, now: float) -> bool:
    """Whether counting one attempt locked a key that was not locked at ``now``."""
    if after.locked_until is None:
        return False
    return before is None or before.locked_until is None or before.locked_until <= now


def settle_success(
    counters: Mapping[str, LoginCounter],
    cleared: Sequence[str],
    refunds: Sequence[tuple[str, ThrottlePolicy]],
) -> LoginCounterChange:
    """After a successful attempt: forget the ``cleared`` keys, give one back to ``refunds``."""
    put: list[LoginCounter] = []
    forget = list(cleared)
    for key, policy in refunds:
        counter = counters.get(key)
        if counter is None:
            continue
        after = refunded(counter, policy)
        if after is None:
            forget.append(key)
        else:
            put.append(after)
    return LoginCounterChange(put=tuple(put), forget=tuple(forget))


def combine(verdicts: list[ThrottleVerdict]) -> ThrottleVerdict:
    """Refused if any key refuses; the caller then waits for the latest of their retry times."""
    refused = [v for v in verdicts if not v.allowed]
    if not refused:
        return ALLOWED
    return max(refused, key=lambda v: v.retry_at or 0.0)


def _refused(now: float, retry_at: float) -> ThrottleVerdict:
    return ThrottleVerdict(allowed=False, delay=max(retry_at - now, 0.0), retry_at=retry_at)
