"""The scheduler and the ring watcher over real stores: moved clocks, racing processes, NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import asyncpg
import pytest

from idp.admin.context import AdminContext
from idp.admin.keys import revoke_key, rotate_keys
from idp.config import Settings
from idp.keyring.changes import ensure_key_rings
from idp.keyring.ring import KeyRingService
from idp.keyring.scheduler import KeyRingScheduler
from idp.store import make_store
from idp.store.base import KeyRecord, Store
from tests.support.clocks import FakeClock
from tests.support.server import pg_base_url

pytestmark = pytest.mark.anyio

T0 = 1_900_000_000.0


def short(settings: Settings) -> Settings:
    """Rotate every 100 s, pre-publish 10 s, keep retired keys 30 + 5 s."""
    return replace(
        settings,
        key_rotation_interval=100,
        key_prepublish=10,
        jwks_max_age=5,
        access_token_ttl=20,
        id_token_ttl=30,
    )


def by_state(keys: list[KeyRecord], alg: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key in keys:
        if key.alg == alg:
            found.setdefault(key.state, []).append(key.kid)
    return found


@contextlib.asynccontextmanager
async def second_store(settings: Settings) -> AsyncIterator[Store]:
    """Another connection set to the same database, as another process would have."""
    other = make_store(settings.database_url)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_scheduler_runs_a_whole_timeline_and_audits_it(
    store: Store, settings: Settings
) -> None:
    clock = FakeClock(T0)
    tuned = short(settings)
    await ensure_key_rings(store, tuned, clock)
    first = {k.alg: k.kid for k in await store.list_keys() if k.state == "active"}
    upcoming = {k.alg: k.kid for k in await store.list_keys() if k.state == "next"}
    changes: list[int] = []
    scheduler = KeyRingScheduler(store, tuned, clock, lambda: changes.append(1))
    before = len(await store.list_audit())

    clock.now = T0 + 99
    assert await scheduler.run_once() == pytest.approx(1.0)
    assert len(await store.list_audit()) == before and not changes

    clock.now = T0 + 100
    sleep = await scheduler.run_once()
    keys = await store.list_keys()
    for alg in tuned.signing_algs:
        states = by_state(keys, alg)
        assert states["active"] == [upcoming[alg]]
        assert states["retired"] == [first[alg]]
        assert len(states["next"]) == 1
    assert changes == [1]
    assert sleep == pytest.approx(5.0)  # nothing due before 35 s: the scheduler still looks
    entries = (await store.list_audit())[before:]
    assert {e.actor for e in entries} == {"scheduler"}
    assert sorted(e.action for e in entries) == sorted(
        ["key.retire", "key.activate", "key.create"] * len(tuned.signing_algs)
    )

    clock.now = T0 + 134
    await scheduler.run_once()
    assert all(k.state != "expired" for k in await store.list_keys())
    clock.now = T0 + 135
    await scheduler.run_once()
    expired = [k for k in await store.list_keys() if k.state == "expired"]
    assert sorted(k.kid for k in expired) == sorted(first.values())
    assert all(k.private_key_sealed is None for k in expired)
    last = (await store.list_audit())[-len(expired) :]
    assert {(e.actor, e.action) for e in last} == {("scheduler", "key.expire")}


async def test_racing_schedulers_rotate_exactly_once(store: Store, settings: Settings) -> None:
    clock = FakeClock(T0)
    tuned = short(settings)
    await ensure_key_rings(store, tuned, clock)
    clock.now = T0 + 100
    async with second_store(tuned) as other, second_store(tuned) as third:
        schedulers = [KeyRingScheduler(s, tuned, clock) for s in (store, other, third)]
        await asyncio.gather(*(s.run_once() for s in schedulers))
    keys = await store.list_keys()
    for alg in tuned.signing_algs:
        states = by_state(keys, alg)
        assert len(states["active"]) == 1 and len(states["retired"]) == 1
        assert len(states["next"]) == 1
    activations = [e for e in await store.list_audit() if e.action == "key.activate"]
    assert len(activations) == len(tuned.signing_algs)


async def test_due_rotation_waits_for_a_fresh_next_key(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    tuned = short(settings)
    await ensure_key_rings(store, tuned, clock)
    clock.now = T0 + 95
    # A manual rotation 5 s before the schedule: the new next key is only 5 s old at T0+100.
    (rotation,) = await rotate_keys(AdminContext(store, tuned, clock=clock), ["ES256"])
    assert rotation.warning is None  # the promoted key was published 95 s ago
    scheduler = KeyRingScheduler(store, tuned, clock)
    clock.now = T0 + 195
    with caplog.at_level("INFO", logger="idp.keyring.scheduler"):
        await scheduler.run_once()
    active = [k for k in await store.list_keys() if k.alg == "ES256" and k.state == "active"]
    assert active[0].kid == rotation.next_kid
    # Rotate by hand again right away: its promoted key is brand new, so it warns.
    (hasty,) = await rotate_keys(AdminContext(store, tuned, clock=clock), ["ES256"])
    assert hasty.warning is not None and "pre-publication window" in hasty.warning
    # Just before the next scheduled rotation (due T0+295) the next key is revoked, so its
    # replacement is new: the scheduler waits until it has been published for 10 s.
    clock.now = T0 + 294
    replacement = await revoke_key(AdminContext(store, tuned, clock=clock), hasty.next_kid)
    assert replacement.state == "revoked"
    fresh = next(k for k in await store.list_keys() if k.alg == "ES256" and k.state == "next")
    clock.now = T0 + 300
    with caplog.at_level("INFO", logger="idp.keyring.scheduler"):
        assert await scheduler.run_once() == pytest.approx(4.0)
        await scheduler.run_once()
    waits = [r.message for r in caplog.records if "rotation is due" in r.message]
    assert len(waits) == 1, waits  # said once, not on every pass
    assert f"next key {fresh.kid} has been published for only 6s of 10s" in waits[0]
    waiting = [k for k in await store.list_keys() if k.alg == "ES256" and k.state == "active"]
    assert waiting[0].kid == hasty.active_kid  # ES256 has not rotated yet
    clock.now = T0 + 304
    await scheduler.run_once()
    active = [k for k in await store.list_keys() if k.alg == "ES256" and k.state == "active"]
    assert active[0].kid == fresh.kid


async def _wait(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _listener_pids(schema_channel: str) -> list[int]:
    connection = await asyncpg.connect(pg_base_url())
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            "idp-listener " + schema_channel,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _terminate(pids: list[int]) -> None:
    connection = await asyncpg.connect(pg_base_url())
    try:
        for pid in pids:
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_ring_watcher_hears_changes_and_survives_a_killed_listener(
    store: Store, settings: Settings
) -> None:
    """PostgreSQL: NOTIFY brings a change at once, with polling out of the way (60 s).

    SQLite has no notifications; the same watcher polls (here every 0.2 s).
    """
    postgres = not settings.is_sqlite
    await ensure_key_rings(store, settings)
    service = KeyRingService(store, settings.key_encryption_key, 60.0 if postgres else 0.2)
    await service.load()
    watcher = asyncio.create_task(service.watch())
    try:
        channel = ""
        if postgres:
            schema = settings.database_url.rsplit("search_path=", 1)[1]
            channel = "idp_key_ring_" + hashlib.md5(schema.encode()).hexdigest()[:16]  # noqa: S324
            await _wait_async(lambda: _listener_pids(channel), 5.0)
        async with second_store(settings) as other:
            version = service.ring.version
            await rotate_keys(AdminContext(other, settings), ["ES256"])
            took = await _wait(lambda: service.ring.version > version, 5.0)
            assert took < 3.0
            if not postgres:
                return
            (first_pid,) = await _listener_pids(channel)
            await _terminate([first_pid])
            version = service.ring.version
            await rotate_keys(AdminContext(other, settings), ["RS256"])
            await _wait(lambda: service.ring.version > version, 5.0)
            # LISTEN resumes on a new connection, and again brings changes at once.
            pids = await _wait_async(lambda: _listener_pids(channel), 5.0)
            assert pids and first_pid not in pids
            version = service.ring.version
            await rotate_keys(AdminContext(other, settings), ["ES256"])
            assert await _wait(lambda: service.ring.version > version, 5.0) < 3.0
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _wait_async(check: Callable[[], object], timeout: float) -> list[int]:
    started = time.monotonic()
    while True:
        result = await check()  # type: ignore[misc]
        if result:
            return list(result)
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.05)
