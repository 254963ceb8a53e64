"""Shared fixtures: both stores, settings, and a real HTTP server on 127.0.0.1.

Every storage fixture is parametrised over SQLite and PostgreSQL. PostgreSQL tests get a
schema of their own (dropped afterwards), so two runs on one server never collide.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import uvicorn

from idp.clock import Clock, system_clock
from idp.config import Settings, load_settings, new_key_encryption_key
from idp.http.app import create_app
from idp.management import create_client
from idp.oauth.registration import ClientRequest
from idp.oauth.uris import backchannel_rules
from idp.store import make_store
from idp.store.base import Store
from tests.cli import Idp

if TYPE_CHECKING:
    from tests.sso import World

STORES = ("sqlite", "postgresql")

T = TypeVar("T")


def pg_base_url() -> str:
    return os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_search_path(url: str, schema: str) -> str:
    """A DSN whose connections use ``schema`` (asyncpg passes unknown parameters as settings)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}search_path={schema}"


async def _pg_execute(sql: str) -> None:
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


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/idp.db"
        return
    schema = f"idp_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_execute(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(pg_base_url(), schema)
    finally:
        asyncio.run(_pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


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


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def env(database_url: str, port: int) -> dict[str, str]:
    return make_env(database_url, port)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    """An open, migrated store of each kind."""
    the_store = make_store(settings.database_url)
    await the_store.open()
    await the_store.migrate()
    try:
        yield the_store
    finally:
        await the_store.close()


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


def start_server(settings: Settings, port: int, clock: Clock = system_clock) -> LiveServer:
    """Serve ``create_app(settings)`` on 127.0.0.1:port and wait until it accepts requests."""
    asyncio.run(_migrate(settings.database_url))
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", settings, server, thread)


async def _migrate(database_url: str) -> None:
    the_store = make_store(database_url)
    await the_store.open()
    try:
        await the_store.migrate()
    finally:
        await the_store.close()


@pytest.fixture
def live_server(settings: Settings, port: int) -> Iterator[LiveServer]:
    """The token service over each store, on a real socket."""
    server = start_server(settings, port)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic credentials, form-urlencoded first (RFC 6749 section 2.3.1)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def _register(settings: Settings, request: ClientRequest) -> tuple[str, str | None]:
    the_store = make_store(settings.database_url)
    await the_store.open()
    try:
        record, secret = await create_client(
            the_store, request, backchannel=backchannel_rules(settings)
        )
        return record.client_id, secret
    finally:
        await the_store.close()


def register_client(settings: Settings, name: str = "service", **fields: Any) -> tuple[str, str]:
    """Register a client in the service's store; return (client_id, secret or "")."""
    client_id, secret = asyncio.run(_register(settings, ClientRequest(name=name, **fields)))
    return client_id, secret or ""


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working directory for the command."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def idp(database_url: str, port: int, cwd: Path) -> Idp:
    """The command over a fresh, empty store of each kind (no schema yet)."""
    return Idp(make_env(database_url, port), cwd)


@pytest.fixture
def migrated(idp: Idp, database_url: str) -> Idp:
    """The command over a migrated store of each kind (migrated in-process, to save a run)."""
    with_store(database_url, lambda store: store.migrate())
    return idp


@pytest.fixture
def world(settings: Settings, port: int) -> Iterator[World]:
    """A provider on a movable clock with a user and its test clients (see tests/sso.py)."""
    from tests.sso import running_world  # tests.sso imports this module: import it late

    yield from running_world(settings, port)
