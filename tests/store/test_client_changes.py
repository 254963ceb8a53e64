"""The clients counter, its notifications, and the clients a server holds in memory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.store.base import ClientRecord, Conflict, Store
from idp.store.client_cache import ClientCache
from tests.support.records import a_client
from tests.support.stores import open_stores, write_raw

pytestmark = pytest.mark.anyio

DEADLINE = 10.0


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until ``check()`` holds; fails after DEADLINE."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > DEADLINE:
            raise AssertionError(f"{what}: not within {DEADLINE} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def caching(store: Store, client_id: str) -> AsyncIterator[None]:
    """``store`` holding its clients in memory, as a server's does, until the block ends;
    the block starts once a lookup of ``client_id`` has left it held."""
    task = asyncio.create_task(store.cache_clients())

    async def held() -> bool:
        await store.get_client_cached(client_id)
        return store.client_cache is not None and len(store.client_cache) == 1

    try:
        await _eventually(held, f"{client_id} held")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_every_client_change_moves_the_counter(store: Store, settings: Settings) -> None:
    seen = [await store.clients_version()]

    async def moved() -> bool:
        seen.append(await store.clients_version())
        return seen[-1] > seen[-2]

    await store.create_client(a_client())
    assert await moved()
    assert await store.update_client(replace(a_client(), scope=("read",)))
    assert await moved()
    with pytest.raises(Conflict):
        await store.create_client(a_client(client_id="c2"))
    assert not await moved()  # rolled back with the refused insert
    assert await store.delete_client("c1")
    assert await moved()
    await store.create_client(a_client())
    assert await moved()
    # Past the store, as an operator's statements: the triggers move it all the same.
    rows = [("UPDATE clients SET name = ? WHERE client_id = ?", ("renamed", "c1"))]
    await asyncio.to_thread(write_raw, settings.database_url, rows)
    assert await moved()
    await asyncio.to_thread(write_raw, settings.database_url, [("DELETE FROM clients", ())])
    assert await moved()
    assert await store.list_clients() == []


async def test_the_watcher_hears_another_store_objects_change(settings: Settings) -> None:
    """PostgreSQL: the trigger's NOTIFY reaches the listener; SQLite has none (it polls)."""
    async with open_stores(settings.database_url, 2) as (watching, writing):
        await watching.migrate()
        heard = asyncio.Event()
        listener = asyncio.create_task(watching.watch_clients(heard.set))
        try:
            if settings.is_sqlite:
                await asyncio.wait_for(listener, DEADLINE)  # nothing to listen to
                return
            await asyncio.wait_for(heard.wait(), DEADLINE)  # called once on connecting
            heard.clear()
            await writing.create_client(a_client())
            await asyncio.wait_for(heard.wait(), DEADLINE)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def test_held_clients_follow_another_store_objects_changes(settings: Settings) -> None:
    async with open_stores(settings.database_url, 2) as (server, other):
        await server.migrate()
        await other.create_client(a_client())
        async with caching(server, "c1"):
            assert await server.get_client_cached("c1") == a_client()
            changed = replace(a_client(), secret_hash=b"\x01" * 32)
            await other.update_client(changed)
            took = await _eventually(
                lambda: _is(server.get_client_cached("c1"), changed), "secret change"
            )
            print(f"secret change applied after {took:.3f} s")
            await other.delete_client("c1")
            took = await _eventually(lambda: _is(server.get_client_cached("c1"), None), "delete")
            print(f"deletion applied after {took:.3f} s")


async def _is(found: Awaitable[ClientRecord | None], expected: ClientRecord | None) -> bool:
    return await found == expected


async def test_held_clients_see_this_store_objects_own_changes_at_once(store: Store) -> None:
    await store.create_client(a_client())
    async with caching(store, "c1"):
        assert await store.get_client_cached("c1") == a_client()
        changed = replace(a_client(), secret_hash=b"\x02" * 32, scope=("read",))
        assert await store.update_client(changed)
        assert await store.get_client_cached("c1") == changed
        assert await store.delete_client("c1")
        assert await store.get_client_cached("c1") is None
        await store.create_client(a_client(client_id="c2", name="new"))
        found = await store.get_client_cached("c2")
        assert found is not None and found.name == "new"


async def test_held_clients_are_bounded_and_unknown_ids_leave_nothing(store: Store) -> None:
    for n in range(5):
        await store.create_client(a_client(name=f"app{n}", client_id=f"c{n}"))
    cache = ClientCache(store.get_client, limit=3)
    await cache.get("c0")
    assert len(cache) == 0  # the counter was never read: nothing is trusted, nothing held
    await cache.check(store)
    for n in range(5):
        assert await cache.get(f"c{n}") is not None
    assert len(cache) == 3  # the least recently used went first
    for n in range(2000):
        assert await cache.get(f"unknown-{n}") is None
    assert len(cache) == 3
    await store.create_client(a_client(name="late", client_id="unknown-7"))
    assert await cache.get("unknown-7") is not None  # a miss was never remembered


async def test_a_read_across_an_invalidation_is_not_kept(store: Store) -> None:
    """A lookup that read the row before a change and returns after it keeps nothing."""
    await store.create_client(a_client())

    async def read_while_changing(client_id: str) -> ClientRecord | None:
        found = await store.get_client(client_id)
        cache.invalidate()  # the change is heard while this read is under way
        return found

    cache = ClientCache(read_while_changing)
    await cache.check(store)
    assert await cache.get("c1") == a_client()
    assert len(cache) == 0
