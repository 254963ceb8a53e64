"""Shared fixtures: both stores, settings, and a real HTTP server on 127.0.0.1.

Every storage fixture is parametrised over SQLite and PostgreSQL. PostgreSQL tests get a
schema of their own (dropped afterwards), so two runs on one server never collide.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from idp.config import Settings, load_settings
from idp.store import make_store
from idp.store.base import Store
from tests.support.cli import Idp
from tests.support.server import (
    STORES,
    LiveServer,
    free_port,
    make_env,
    pg_base_url,
    pg_execute,
    start_server,
    with_search_path,
    with_store,
)

if TYPE_CHECKING:
    from tests.support.sso import World


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
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(pg_base_url(), schema)
    finally:
        asyncio.run(pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


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
    """A provider on a movable clock with a user and its test clients (see tests/support/sso.py)."""
    from tests.support.sso import running_world

    yield from running_world(settings, port)
