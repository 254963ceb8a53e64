"""Several store objects on one database: the way separate server processes share it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

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


def write_raw(database_url: str, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """Run statements (``?`` placeholders) past the store, on a connection of their own, in
    one transaction: as an older version or an operator typing SQL by hand would."""
    if database_url.startswith("sqlite:"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        with connection:
            for sql, values in statements:
                connection.execute(sql, values)
        connection.close()
        return

    async def run() -> None:
        pg = await asyncpg.connect(database_url, timeout=10)
        try:
            async with pg.transaction():
                for sql, values in statements:
                    numbered = sql
                    for i in range(1, len(values) + 1):
                        numbered = numbered.replace("?", f"${i}", 1)
                    await pg.execute(numbered, *values)
        finally:
            await pg.close()

    asyncio.run(run())
