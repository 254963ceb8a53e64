"""Registered clients held in memory, so that client authentication (RFC 6749 section 2.3.1)
at the token, introspection and revocation endpoints need not read the database.

Every change to the clients table moves a counter in the change's own transaction (the
triggers of migration 0009). A server process follows that counter and forgets every client
it holds whenever it moves: at once for a change made through the process's own store, on
the change's NOTIFY on PostgreSQL, and otherwise at the next poll of the counter (every
``POLL_INTERVAL``; SQLite has no notifications, and a lost listener is polled past).

What is held is trusted only while the counter has been read lately: when no read of it
started in the last ``MAX_AGE`` seconds (database unreachable, event loop stalled), lookups
go to the database again. So a client deleted or changed by another process is refused or
applied within ``MAX_AGE``, whatever happens to the notifications.

Only clients that exist are held, at most ``LIMIT`` of them (the least recently used go
first); an unknown client_id is read from the database every time and leaves nothing
behind, so a flood of made-up ids costs memory nothing and a new client is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from idp.store.records import ClientRecord

log = logging.getLogger("idp.store")

POLL_INTERVAL = 0.25
"""Seconds between two reads of the clients counter (one indexed point read)."""
MAX_AGE = 1.0
"""Seconds after the start of the last good read of the counter that held clients serve."""
LIMIT = 10_000
"""Clients held at most by one process."""

ReadClient = Callable[[str], Awaitable[ClientRecord | None]]


class ClientChanges(Protocol):
    """Where the clients counter is read and its notifications heard (the store)."""

    async def clients_version(self) -> int: ...
    async def watch_clients(self, on_change: Callable[[], None]) -> None: ...


class ClientCache:
    """The clients looked up lately, in step with the store's clients counter."""

    def __init__(self, read: ReadClient, limit: int = LIMIT) -> None:
        self._read = read
        self._limit = limit
        self._clients: OrderedDict[str, ClientRecord] = OrderedDict()
        # Moved by every invalidation: a read under way across one keeps nothing.
        self._generation = 0
        self._version: int | None = None
        self._checked_at = float("-inf")

    def __len__(self) -> int:
        return len(self._clients)

    async def get(self, client_id: str) -> ClientRecord | None:
        """The client as the database has it, at most ``MAX_AGE`` seconds behind it."""
        if time.monotonic() - self._checked_at >= MAX_AGE:
            return await self._read(client_id)
        client = self._clients.get(client_id)
        if client is not None:
            self._clients.move_to_end(client_id)
            return client
        generation = self._generation
        client = await self._read(client_id)
        if client is not None and generation == self._generation:
            self._clients[client_id] = client
            if len(self._clients) > self._limit:
                self._clients.popitem(last=False)
        return client

    def invalidate(self) -> None:
        """Forget every client held: the clients changed (or may have)."""
        self._generation += 1
        self._clients.clear()

    async def check(self, changes: ClientChanges) -> None:
        """Read the counter; forget every client held if it moved since the last read."""
        started = time.monotonic()
        version = await changes.clients_version()
        if version != self._version:
            self.invalidate()
            self._version = version
        self._checked_at = started


async def follow_clients(
    cache: ClientCache, changes: ClientChanges, poll_interval: float = POLL_INTERVAL
) -> None:
    """Keep ``cache`` in step with the store until cancelled: read the counter on every
    notification and every ``poll_interval`` seconds; failures are logged once each."""
    heard = asyncio.Event()
    listener = asyncio.create_task(changes.watch_clients(heard.set), name="idp-clients-listener")
    failing = False
    try:
        while True:
            try:
                await cache.check(changes)
                if failing:
                    log.info("client cache: the clients counter is readable again")
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning(
                        "client cache: reading clients from the store, its counter is "
                        "unreadable: %s: %s",
                        type(exc).__name__,
                        exc,
                    )
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), poll_interval)
            heard.clear()
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
