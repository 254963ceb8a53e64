"""Helpers for tests that need a store or a live server: databases of each kind, settings,
and the token service on a real socket on 127.0.0.1 (the fixtures over them are in conftest)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import uvicorn

from idp.admin.clients import create_client
from idp.admin.context import AdminContext
from idp.clock import Clock, system_clock
from idp.config import Settings, new_key_encryption_key
from idp.http.app import create_app
from idp.oauth.registration import ClientRequest
from idp.store import make_store
from idp.store.base import Store

STORES = ("sqlite", "postgresql")

T = TypeVar("T")


def pg_base_url() -> str:
    return os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_search_path(url: str, schema: str) -> str:
    """A DSN whose connections use ``schema`` (asyncpg passes unknown parameters as settings)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}search_path={schema}"


async def pg_execute(sql: str) -> None:
    connection = await asyncpg.connect(pg_base_url(), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def with_store(database_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store in this process, run ``work`` on it, close it."""

    async def run() -> T:
        store = make_store(database_url)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """The IDP_* variables for a service on 127.0.0.1:port over the given database."""
    return {
        "IDP_ISSUER": f"http://127.0.0.1:{port}",
        "IDP_DATABASE_URL": database_url,
        "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        **extra,
    }


@dataclass
class LiveServer:
    """A uvicorn server running the app in a background thread."""

    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def held_clients(self) -> int | None:
        """How many clients the server holds in memory (None: its client cache is not running)."""
        cache = self.server.config.app.state.services.store.client_cache
        return None if cache is None else len(cache)


def start_uvicorn(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    """Run uvicorn with ``config`` in a daemon thread; return once it accepts requests."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{config.port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread


def start_server(settings: Settings, port: int, clock: Clock = system_clock) -> LiveServer:
    """Serve ``create_app(settings)`` on 127.0.0.1:port and wait until it accepts requests."""
    asyncio.run(migrate_store(settings.database_url))
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server, thread = start_uvicorn(config)
    return LiveServer(f"http://127.0.0.1:{port}", settings, server, thread)


async def migrate_store(database_url: str) -> None:
    the_store = make_store(database_url)
    await the_store.open()
    try:
        await the_store.migrate()
    finally:
        await the_store.close()


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic credentials, form-urlencoded first (RFC 6749 section 2.3.1)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def _register(settings: Settings, request: ClientRequest) -> tuple[str, str | None]:
    the_store = make_store(settings.database_url)
    await the_store.open()
    try:
        record, secret = await create_client(AdminContext(the_store, settings), request)
        return record.client_id, secret
    finally:
        await the_store.close()


def register_client(settings: Settings, name: str = "service", **fields: Any) -> tuple[str, str]:
    """Register a client in the service's store; return (client_id, secret or "")."""
    client_id, secret = asyncio.run(_register(settings, ClientRequest(name=name, **fields)))
    return client_id, secret or ""
