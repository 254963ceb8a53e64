"""``idp audit list``: the audit trail, over :mod:`idp.admin.audit`."""

from __future__ import annotations

import argparse
import json
import time

from idp.admin.audit import check_action, parse_since, read_audit
from idp.admin.context import InvalidInput
from idp.admin.documents import audit_document
from idp.cli.base import Column, Commands, Document, finish, group, positive, print_list, read
from idp.config import Settings


def since(text: str) -> float:
    """``--since``: a duration back from now (``90s``, ``15m``, ``12h``, ``30d``) or an ISO time."""
    try:
        return parse_since(text, time.time())
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def action(text: str) -> str:
    """``--action``: one action or a family (``signin.*``)."""
    try:
        return check_action(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _details(d: Document) -> str:
    return " ".join(
        part
        for part in (
            f"subject={d['subject']}" if d["subject"] else "",
            f"count={d['count']}" if d["count"] > 1 else "",
            json.dumps(d["detail"], sort_keys=True) if d["detail"] else "",
        )
        if part
    )


COLUMNS: list[Column] = [
    ("TIME", lambda d: d["at"]),
    ("ACTOR", lambda d: d["actor"]),
    ("ACTION", lambda d: d["action"]),
    ("TARGET", lambda d: d["target"]),
    ("OUTCOME", lambda d: d["outcome"]),
    ("DETAILS", _details),
]


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    page = read(settings, lambda ctx: read_audit(ctx, args.since, args.limit, None, args.action))
    print_list(args.json, page.entries, audit_document, COLUMNS, "no audit entries")


def add_commands(commands: Commands) -> None:
    """``idp audit ...``."""
    audit_group = group(commands, "audit", "read the audit trail")
    audit_list = audit_group.add_parser("list", help="list audit entries, oldest first")
    audit_list.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="only entries from then on: a duration back from now (90s, 15m, 12h, 30d) or an "
        "ISO time with zone (default: all)",
    )
    audit_list.add_argument(
        "--limit", type=positive, default=1000, help="keep the newest N entries (default: 1000)"
    )
    audit_list.add_argument(
        "--action",
        type=action,
        metavar="ACTION",
        help="only entries of this action (signin.password) or family of actions (signin.*)",
    )
    finish(audit_list, cmd_list, writes=False)
