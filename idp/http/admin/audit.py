"""``GET /admin/audit``: the audit trail, newest page first, over :mod:`idp.admin.audit`."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin.audit import parse_since, read_audit
from idp.admin.documents import audit_document
from idp.http.admin.routing import AdminCall, answer, read_query
from idp.http.json_body import POSITIVE_INTEGER, STRING, Field

MAX_PAGE = 1000
QUERY = (
    Field(
        "since",
        STRING,
        "Only entries from this moment on: a duration back from now (90s, 15m, 12h, 30d) or "
        "an ISO 8601 time with its zone (2026-01-31T12:00:00Z).",
    ),
    Field("limit", POSITIVE_INTEGER, f"Entries per page (default {MAX_PAGE}).", limit=MAX_PAGE),
    Field(
        "cursor",
        STRING,
        "The next_cursor of the previous page: the page of older entries before it.",
    ),
    Field(
        "action",
        STRING,
        "Only entries of this action (signin.password), or of a family of actions (signin.*).",
    ),
)


async def list_audit(call: AdminCall) -> Response:
    """The newest audit entries, oldest first; next_cursor leads to older ones."""
    query = read_query(call.request, QUERY)
    ctx = call.admin
    since = parse_since(query["since"], ctx.clock()) if "since" in query else None
    page = await read_audit(
        ctx, since, query.get("limit", MAX_PAGE), query.get("cursor"), query.get("action")
    )
    entries = [audit_document(e) for e in page.entries]
    return answer({"entries": entries, "next_cursor": page.next_cursor})
