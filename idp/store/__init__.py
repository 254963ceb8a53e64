"""Storage: one protocol, one SQL implementation, two dialects (embedded SQLite, PostgreSQL).

- ``base``: the contract: errors, the ``Store`` protocol and its narrow roles; re-exports
  the records of ``records`` (every caller imports from ``base``);
- ``codec``: one ``Table`` per record, from which rows are read and written;
- ``sql/``: the SQL implementation, one module per concern; ``rotation``: its pure
  refresh-token rules; ``migrations``: the numbered schema files it applies;
- ``dialects/``: the driver and the few forms that differ, per database;
- ``housekeeping``: the batch deletes of expired rows; ``usernames``: the canonical form;
- ``client_cache``: the clients a server process holds in memory, following their counter.
"""

from __future__ import annotations

from idp.config import sqlite_path
from idp.store.base import Store


def make_store(database_url: str, *, create: bool = True) -> Store:
    """The store a database URL names; call ``open()`` before use.

    Without ``create`` opening a SQLite store never creates its file (for read-only commands).
    """
    from idp.store.sql import SqlStore

    if database_url.startswith("sqlite:"):
        from idp.store.dialects.sqlite import SQLiteDialect

        return SqlStore(SQLiteDialect(sqlite_path(database_url), create=create))
    from idp.store.dialects.postgresql import PostgresDialect

    return SqlStore(PostgresDialect(database_url))
