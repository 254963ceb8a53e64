"""Several store objects on one database: the way separate server processes share it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from idp.store import make_store
from idp.store.base import Store


@asynccontextmanager
async def open_stores(database_url: str, count: int) -> AsyncIterator[list[Store]]:
    """``count`` opened stores on ``database_url``, each closed on the way out."""
    stores = [make_store(database_url) for _ in range(count)]
    try:
        for each in stores:
            await each.open()
        yield stores
    finally:
        for each in stores:
            await each.close()
