"""A fixed-window rate limit per client address, on the login throttle's shared counters.

Each request counts against its address's key (an IPv4 address or the IPv6 /64 around it,
as the login throttle counts): up to ``limit`` requests within ``window`` seconds from the
first, then refused until that window ends. The count is one atomic store step
(``update_login_counters``), so every replica sees the same counts and parallel requests
cannot outrun it; housekeeping deletes the counters once their window has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from idp.store.base import LoginCounter, LoginCounterChange, LoginCounterStore
from idp.store.security_events import address_block


@dataclass(frozen=True)
class RateVerdict:
    """Whether a request may go on; if not, the seconds until its window ends."""

    allowed: bool
    retry_after: float = 0.0


def rate_key(prefix: str, ip: str) -> str:
    """The counter key of one limited action (``prefix``) from one client address."""
    return f"{prefix}:ip:{address_block(ip)}"


def count_request(
    counter: LoginCounter | None, key: str, now: float, limit: int, window: float
) -> tuple[RateVerdict, LoginCounterChange]:
    """What one more request does to a key's live counter: counted, or refused (unchanged)."""
    if counter is None or counter.expires_at <= now:
        fresh = LoginCounter(key, 1, now, now, None, now + window)
        return RateVerdict(True), LoginCounterChange(put=(fresh,))
    if counter.failures >= limit:
        return RateVerdict(False, counter.expires_at - now), LoginCounterChange()
    counted = replace(counter, failures=counter.failures + 1, last_failure_at=now)
    return RateVerdict(True), LoginCounterChange(put=(counted,))


async def take_request(
    store: LoginCounterStore, key: str, now: float, limit: int, window: float
) -> RateVerdict:
    """Count one request against ``key`` if its window allows it, in one atomic store step."""
    decided: list[RateVerdict] = []

    def update(live: Mapping[str, LoginCounter]) -> LoginCounterChange:
        verdict, change = count_request(live.get(key), key, now, limit, window)
        decided.append(verdict)
        return change

    await store.update_login_counters([key], now, update)
    return decided[-1]
