"""Storage: one protocol, one SQL implementation, two dialects (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

from idp.config import sqlite_path
from idp.store.base import (
    AuthorizationCodeRecord,
    ClientRecord,
    CodeRedemption,
    Conflict,
    KeyRecord,
    KeyRingChange,
    LoginCounter,
    NewRefreshToken,
    NotFound,
    RefreshRotation,
    RefreshTokenRecord,
    RotationOutcome,
    SchemaOutdated,
    SchemaStatus,
    SessionRecord,
    Store,
    StoreError,
    StoreUnavailable,
    UserRecord,
)

__all__ = [
    "AuthorizationCodeRecord",
    "ClientRecord",
    "CodeRedemption",
    "Conflict",
    "KeyRecord",
    "KeyRingChange",
    "LoginCounter",
    "NewRefreshToken",
    "NotFound",
    "RefreshRotation",
    "RefreshTokenRecord",
    "RotationOutcome",
    "SchemaOutdated",
    "SchemaStatus",
    "SessionRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UserRecord",
    "make_store",
]


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
