"""The login throttle's rules, as pure functions of a failure counter and the time.

Per key (an account or a client address) and within a window that starts at the first
failure: up to ``max_failures`` failures cost nothing; each further failure doubles a
pause before the next attempt may be checked (1 s, 2 s, 4 s ... at most 60 s); at twice
``max_failures`` the key is locked for ``lock_duration``, and when the lock ends the count
starts again from zero. OWASP Authentication Cheat Sheet, "Login Throttling".
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.store.base import LoginCounter

MAX_DELAY = 60.0


@dataclass(frozen=True)
class ThrottleVerdict:
    """Whether a password may be checked now; if not, how long to wait and until when."""

    allowed: bool
    delay: float
    retry_at: float | None


ALLOWED = ThrottleVerdict(allowed=True, delay=0.0, retry_at=None)


@dataclass(frozen=True)
class ThrottlePolicy:
    """The thresholds for one kind of key (accounts, or client addresses)."""

    max_failures: int
    window: float
    lock_duration: float

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


def lock_until(counter: LoginCounter, now: float, policy: ThrottlePolicy) -> float | None:
    """When a lock just earned by ``counter`` ends, or None when no new lock is due."""
    if counter.failures < policy.lock_after:
        return None
    if counter.locked_until is not None and counter.locked_until > now:
        return None
    return now + policy.lock_duration


def combine(verdicts: list[ThrottleVerdict]) -> ThrottleVerdict:
    """Refused if any key refuses; the caller then waits for the latest of their retry times."""
    refused = [v for v in verdicts if not v.allowed]
    if not refused:
        return ALLOWED
    return max(refused, key=lambda v: v.retry_at or 0.0)


def _refused(now: float, retry_at: float) -> ThrottleVerdict:
    return ThrottleVerdict(allowed=False, delay=max(retry_at - now, 0.0), retry_at=retry_at)
