"""``idp sessions list|end``: users' browser sessions, over :mod:`idp.admin.sessions`.

Ending sessions sends back-channel logout to the clients that used them; the command waits
for those deliveries before it exits.
"""

from __future__ import annotations

import argparse

from idp.admin import sessions
from idp.admin.documents import session_document, sessions_ended_document
from idp.admin.users import UserRef
from idp.cli import base
from idp.cli.base import Commands
from idp.config import Settings

USER_HELP = "the user's username or id"

COLUMNS: list[base.Column] = [
    ("SID", lambda d: d["sid"]),
    ("STARTED", lambda d: d["created_at"]),
    ("LAST SEEN", lambda d: d["last_seen_at"]),
    ("EXPIRES", lambda d: min(d["idle_expires_at"], d["expires_at"])),
    ("METHODS", lambda d: ",".join(d["amr"])),
    ("CLIENTS", lambda d: ",".join(d["clients"])),
]


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    _, found = base.read(settings, lambda ctx: sessions.list_sessions(ctx, ref))
    base.print_list(args.json, found, session_document, COLUMNS, "no live sessions")


def cmd_end(args: argparse.Namespace, settings: Settings) -> None:
    if args.sid is not None:
        if args.user is not None or args.all:
            raise base.CommandError("give a session id, or --user with --all, not both")
        user = base.run(settings, lambda ctx: sessions.end_session(ctx, args.sid), notifies=True)
        base.emit(
            {"sid": args.sid, "user_id": user.id, "username": user.username, "ended": True},
            args.json,
            lambda d: f"ended session {d['sid']} of user {d['username']}",
        )
        return
    if args.user is None or not args.all:
        raise base.CommandError("give a session id to end, or --user USER --all to end them all")
    ref = UserRef.either(args.user)
    found, ended = base.run(
        settings, lambda ctx: sessions.end_all_sessions(ctx, ref), notifies=True
    )
    base.emit(
        sessions_ended_document(found, ended),
        args.json,
        lambda d: f"ended {d['sessions_ended']} session(s) of user {d['username']}",
    )


def add_commands(commands: Commands) -> None:
    """``idp sessions ...``."""
    sessions_group = base.group(commands, "sessions", "list and end users' browser sessions")
    listing = sessions_group.add_parser("list", help="list a user's live sessions, newest first")
    listing.add_argument("user", metavar="username-or-id", help=USER_HELP)
    base.finish(listing, cmd_list, writes=False)
    end = sessions_group.add_parser(
        "end", help="end one session by its sid, or every session of a user (--user U --all)"
    )
    end.add_argument("sid", nargs="?", help="the session's sid, as `idp sessions list` shows it")
    end.add_argument("--user", metavar="USERNAME-OR-ID", help=f"with --all: the user ({USER_HELP})")
    end.add_argument("--all", action="store_true", help="end every session of --user")
    base.finish(end, cmd_end)
