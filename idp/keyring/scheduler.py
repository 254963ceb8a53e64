"""The key-ring scheduler: performs scheduled rotations and expiries in every server process.

Each process runs one; they coordinate through the store alone. A pass first reads the ring
and works out, without writing, whether anything is due; only then does it run the pass
inside ``change_key_ring`` (advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
which recomputes it from the rows as they are under the lock. So when several replicas wake
together, exactly one performs each transition and the others find nothing left to do; a
process that dies midway leaves its transaction rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.keyring import lifecycle
from idp.keyring.changes import prepare_keys, run_scheduled_transitions
from idp.keyring.kek import check_opens
from idp.keyring.lifecycle import LifecyclePolicy
from idp.keyring.material import KeyMaterialError
from idp.store.base import KeyRecord, Store, StoreUnavailable

log = logging.getLogger("idp.keyring.scheduler")

MAX_SLEEP = 5.0
"""The scheduler looks at the ring at least this often (seconds), whatever it expects."""
MIN_SLEEP = 0.05
RETRY_SLEEP = 2.0


def _placeholder(alg: str, state: str) -> KeyRecord:
    """A stand-in for a key the dry run would create (never stored)."""
    return KeyRecord("(new)", alg, state, "{}", None, 0.0)


class KeyRingScheduler:
    """Wakes at the next due transition (and every few seconds) and performs what is due."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock = system_clock,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._policy = LifecyclePolicy.from_settings(settings)
        self._on_change = on_change
        self._waiting: set[str] = set()

    async def run_once(self) -> float:
        """One pass: perform what is due now; return how long to sleep before the next."""
        keys = await self._store.list_keys()
        algs = self._settings.signing_algs
        dry = lifecycle.scheduled_pass(keys, algs, self._policy, _placeholder, self._clock())
        self._log_waiting(dry.waiting)
        if not dry.change.is_empty:
            # Refuse before generating keys that the transaction would refuse anyway.
            check_opens(
                keys,
                self._settings.key_encryption_key,
                self._settings.key_encryption_key_source,
            )
            needed = [key.alg for key in dry.change.inserts]
            prepared = await prepare_keys(self._settings, needed, self._clock)
            done = await run_scheduled_transitions(
                self._store, self._settings, self._clock, prepared
            )
            for line in done.done:
                log.info("key ring scheduler: %s", line)
            if not done.change.is_empty and self._on_change is not None:
                self._on_change()
            keys = await self._store.list_keys()
        now = self._clock()
        wake = lifecycle.next_wake(keys, algs, self._policy, now)
        if wake is None:
            return MAX_SLEEP
        return min(max(wake - now, MIN_SLEEP), MAX_SLEEP)

    def _log_waiting(self, waiting: tuple[tuple[str, str], ...]) -> None:
        """Say once why a due rotation waits (not on every pass while it keeps waiting)."""
        subjects = {subject for subject, _ in waiting}
        for subject, reason in waiting:
            if subject not in self._waiting:
                log.info("key ring scheduler: %s", reason)
        self._waiting = subjects

    async def run(self) -> None:
        """Run passes forever; a store outage is logged once and retried."""
        failing = False
        refused: str | None = None
        while True:
            try:
                delay = await self.run_once()
                if failing:
                    log.info("key ring scheduler: store reachable again")
                failing, refused = False, None
            except KeyMaterialError as exc:
                # Another key-encryption key sealed the ring (a rewrap): change nothing.
                if str(exc) != refused:
                    log.error("key ring scheduler: not changing the ring: %s", exc)
                refused = str(exc)
                delay = RETRY_SLEEP
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("key ring scheduler: store unavailable, will retry: %s", exc)
                failing = True
                delay = RETRY_SLEEP
            except Exception:
                log.exception("key ring scheduler: pass failed; will retry")
                delay = RETRY_SLEEP
            await asyncio.sleep(delay)
