"""Reading the audit trail page by page (idp.admin.audit) on both stores, without HTTP."""

from __future__ import annotations

import pytest

from idp.admin.audit import encode_cursor, parse_since, read_audit
from idp.admin.context import AdminContext, InvalidInput
from idp.config import Settings
from idp.store.base import AuditEntry, Store

pytestmark = pytest.mark.anyio


async def test_pages_cover_the_trail_once_newest_page_first(
    store: Store, settings: Settings
) -> None:
    for n in range(25):
        await store.record_audit(AuditEntry(1000.0 + n, "admin:x", f"a{n}", "t", "failure"))
    ctx = AdminContext(store, settings)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await read_audit(ctx, None, 4, cursor)
        pages.append([e.action for e in page.entries])
        cursor = page.next_cursor
        if cursor is None:
            break
        # Rows written meanwhile never shift an older page.
        await store.record_audit(AuditEntry(5000.0, "admin:x", "later", "t", "failure"))
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [a for p in reversed(pages) for a in p] == [f"a{n}" for n in range(25)]

    recent = await read_audit(ctx, 1020.0, 3)
    assert [e.action for e in recent.entries] == ["later"] * 3
    assert recent.next_cursor is not None
    older = await read_audit(ctx, 1020.0, 100, recent.next_cursor)
    assert [e.action for e in older.entries] == [f"a{n}" for n in range(20, 25)] + ["later"] * 3
    assert older.next_cursor is None


async def test_bad_cursors_limits_and_times_are_refused(store: Store, settings: Settings) -> None:
    ctx = AdminContext(store, settings)
    for cursor in ("", "x", "YmVmb3JlOjA", "YmVmb3JlOi0x", encode_cursor(1) + "A"):
        with pytest.raises(InvalidInput, match="cursor"):
            await read_audit(ctx, None, 10, cursor)
    with pytest.raises(InvalidInput):
        await read_audit(ctx, None, 0)
    assert parse_since("90s", 1000.0) == 910.0
    assert parse_since("2026-01-31T12:00:00Z", 0.0) == 1769860800.0
    for text in ("soon", "2026-01-31T12:00:00", "0s"):
        with pytest.raises(InvalidInput):
            parse_since(text, 1000.0)
