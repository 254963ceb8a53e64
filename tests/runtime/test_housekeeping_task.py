"""The housekeeping loop on both stores: one failing collector or an unavailable store does
not stop it, and the running service collects. What each collector deletes is part of the
store conformance suite (tests/store/test_housekeeping.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.store import make_store
from idp.store.base import Store
from idp.store.housekeeping import collect, housekeeping_loop, store_collectors
from tests.support.clocks import T0, FakeClock
from tests.support.housekeeping import add_client_and_user, count_refresh_tokens, seed_expiring_rows
from tests.support.server import free_port, start_server, with_store


@pytest.mark.anyio
async def test_a_failing_collector_does_not_stop_the_others(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await add_client_and_user(store)
    clock = FakeClock()
    tokens = await seed_expiring_rows(store, settings, clock, 2)

    async def broken(now: float, limit: int) -> int:
        raise ValueError("boom")

    collectors = [("broken", broken), *store_collectors(store, settings.access_token_ttl)]
    with caplog.at_level(logging.ERROR, logger="idp.store.housekeeping"):
        deleted = await collect(collectors, T0 + settings.refresh_token_ttl)
    assert deleted == {
        "broken": 0,
        "sessions": 0,
        "authorization_codes": 0,
        "refresh_tokens": 2,
        "login_failures": 6,
        "revoked_access_tokens": 2,
        "revoked_grants": 2,
        "webauthn_challenges": 0,
        "pushed_authorization_requests": 0,
        "client_assertions": 0,
        "dpop_proofs": 0,
        "initial_access_tokens": 0,
        "device_codes": 0,
    }
    assert await count_refresh_tokens(store, tokens) == 0
    assert "collecting broken failed" in caplog.text


@pytest.mark.anyio
async def test_loop_survives_an_unavailable_store(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await add_client_and_user(store)
    clock = FakeClock(T0 + settings.refresh_token_ttl)
    tokens = await seed_expiring_rows(store, settings, FakeClock(), 3)
    # A store that is not open yet answers StoreUnavailable, as during an outage.
    late = make_store(settings.database_url)
    with caplog.at_level(logging.INFO, logger="idp.store.housekeeping"):
        task = asyncio.create_task(
            housekeeping_loop(store_collectors(late, settings.access_token_ttl), clock, 0.02)
        )
        try:
            deadline = time.monotonic() + 20
            while "store unavailable" not in caplog.text:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            assert not task.done()
            await late.open()
            while await count_refresh_tokens(store, tokens):
                assert time.monotonic() < deadline, "expired tokens were never collected"
                await asyncio.sleep(0.05)
            # The tokens go mid-pass; the loop says it is back only once the pass is over.
            while "store reachable again" not in caplog.text:
                assert time.monotonic() < deadline, "the loop never finished a pass"
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await late.close()
    assert caplog.text.count("store unavailable") == 1
    assert "store reachable again" in caplog.text


def test_the_running_service_collects(settings: Settings) -> None:
    server = start_server(replace(settings, housekeeping_interval=1), free_port())
    try:

        async def seed(store: Store) -> tuple[list[str], list[str]]:
            await add_client_and_user(store)
            old = FakeClock(time.time() - settings.refresh_token_ttl - 10)
            return (
                await seed_expiring_rows(store, settings, old, 2),
                await seed_expiring_rows(store, settings, FakeClock(time.time()), 2),
            )

        expired, live = with_store(settings.database_url, seed)
        deadline = time.monotonic() + 30
        while with_store(settings.database_url, lambda s: count_refresh_tokens(s, expired)):
            assert time.monotonic() < deadline, "the service never collected expired tokens"
            time.sleep(0.2)
        assert with_store(settings.database_url, lambda s: count_refresh_tokens(s, live)) == 2
    finally:
        server.stop()
