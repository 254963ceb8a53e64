"""Reading the audit trail: the newest entries since a moment, oldest first, page by page.

The first page is what ``idp audit list`` shows for the same ``since`` and ``limit``; a page
that leaves older entries out carries a cursor for the page before it. The cursor names the
oldest entry shown, so entries written meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from idp.admin.context import AdminContext, InvalidInput
from idp.config import ConfigError, parse_duration
from idp.store.base import AuditEntry

_CURSOR = re.compile(r"before:([1-9][0-9]{0,17})")
BAD_CURSOR = "the cursor is not one this server gave out"
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?")


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, oldest first, and the cursor of the page before it (or None)."""

    entries: list[AuditEntry]
    next_cursor: str | None


def parse_since(text: str, now: float) -> float:
    """A moment given as a duration back from ``now`` (``90s``, ``15m``, ``12h``, ``30d``) or as
    an ISO 8601 time with its zone (``2026-01-31T12:00:00Z``); raises InvalidInput."""
    try:
        return now - parse_duration("since", text)
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"expected a duration such as 12h or an ISO time such as 2026-01-31T12:00:00Z, "
            f"got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"give the time zone (for example Z) in {text!r}")
    return moment.timestamp()


def encode_cursor(before_id: int) -> str:
    """The opaque cursor of the page that ends just before entry ``before_id``."""
    return base64.urlsafe_b64encode(f"before:{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The entry id a cursor of ours names; raises InvalidInput for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidInput(BAD_CURSOR) from None
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise InvalidInput(BAD_CURSOR)
    return int(match.group(1))


def check_action(action: str) -> str:
    """An action filter: a name such as ``signin.password``, or a family such as
    ``signin.*``; raises InvalidInput for anything else."""
    if not _ACTION.fullmatch(action):
        raise InvalidInput(
            f"expected an action such as signin.password or a family such as signin.*, "
            f"got {action[:80]!r}"
        )
    return action


async def read_audit(
    ctx: AdminContext,
    since: float | None,
    limit: int,
    cursor: str | None = None,
    action: str | None = None,
) -> AuditPage:
    """The newest ``limit`` entries at or after ``since`` (before the cursor's entry, if
    given; only ``action``'s, if given), oldest first, with the cursor of the page before
    when there are older ones. A cursor pages on under the same filter."""
    if limit < 1:
        raise InvalidInput("limit must be a positive whole number")
    before = None if cursor is None else decode_cursor(cursor)
    wanted = None if action is None else check_action(action)
    rows = await ctx.store.list_audit(since, limit + 1, before, wanted)
    page = rows[-limit:]
    more = len(rows) > limit and bool(page) and page[0].id is not None
    return AuditPage(page, encode_cursor(page[0].id or 0) if more else None)
