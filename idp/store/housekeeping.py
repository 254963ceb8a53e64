"""Housekeeping: expired rows are deleted in small batches by a background task.

Every replica may run it: each statement deletes at most one batch (on PostgreSQL with
``SKIP LOCKED``, so replicas take different rows), locks are held only for that statement,
and the task yields to the event loop between batches. A store outage costs one tick: the
task logs it and tries again at the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from idp.clock import Clock
from idp.config import DEFAULT_LEEWAY
from idp.store.base import Store, StoreUnavailable

log = logging.getLogger("idp.store.housekeeping")

Collector = Callable[[float, int], Awaitable[int]]
"""Deletes at most ``limit`` rows expired at ``now``; returns how many it deleted."""

BATCH_SIZE = 500


def store_collectors(store: Store, access_token_ttl: int) -> list[tuple[str, Collector]]:
    """The collectors of every kind of row that expires: sessions, codes, refresh tokens,
    login failure counters, revoked access tokens, revoked grants, WebAuthn challenges,
    pushed authorization requests, used client assertions, accepted DPoP proofs, initial
    access tokens and device codes (RFC 8628).

    A grant issues no access token once it has ended, so its row is kept for the
    access-token lifetime (plus the verification leeway) after it was revoked.
    """
    horizon = access_token_ttl + DEFAULT_LEEWAY

    async def revoked_grants(now: float, limit: int) -> int:
        return await store.delete_revoked_grants_before(now - horizon, limit)

    return [
        ("sessions", store.delete_expired_sessions),
        ("authorization_codes", store.delete_expired_authorization_codes),
        ("refresh_tokens", store.delete_expired_refresh_tokens),
        ("login_failures", store.delete_expired_login_failures),
        ("revoked_access_tokens", store.delete_expired_revoked_access_tokens),
        ("revoked_grants", revoked_grants),
        ("webauthn_challenges", store.delete_expired_webauthn_challenges),
        ("pushed_authorization_requests", store.delete_expired_pushed_requests),
        ("client_assertions", store.delete_expired_client_assertions),
        ("dpop_proofs", store.delete_expired_dpop_proofs),
        ("initial_access_tokens", store.delete_expired_initial_access_tokens),
        ("device_codes", store.delete_expired_device_codes),
    ]


async def collect(
    collectors: Sequence[tuple[str, Collector]], now: float, batch: int = BATCH_SIZE
) -> dict[str, int]:
    """Run every collector in batches until a batch comes back short; return counts by name.

    StoreUnavailable propagates (the store is down; the next tick retries). Any other error
    in one collector is logged and the others still run.
    """
    deleted: dict[str, int] = {}
    for name, collector in collectors:
        total = 0
        try:
            while True:
                count = await collector(now, batch)
                total += count
                if count < batch:
                    break
                await asyncio.sleep(0)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("housekeeping: collecting %s failed", name)
        deleted[name] = total
    return deleted


async def housekeeping_loop(
    collectors: Sequence[tuple[str, Collector]],
    clock: Clock,
    interval: float,
    batch: int = BATCH_SIZE,
) -> None:
    """Every ``interval`` seconds, delete what has expired; runs until cancelled."""
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            deleted = await collect(collectors, clock(), batch)
        except StoreUnavailable as exc:
            if not failing:
                log.warning("housekeeping: store unavailable, retrying next tick: %s", exc)
            failing = True
            continue
        if failing:
            log.info("housekeeping: store reachable again")
        failing = False
        log.debug(
            "housekeeping: deleted %s",
            ", ".join(f"{count} {name}" for name, count in deleted.items()),
        )
