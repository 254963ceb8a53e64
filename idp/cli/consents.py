"""``idp consents list|revoke``: the consents users gave clients, over :mod:`idp.admin.consents`."""

from __future__ import annotations

import argparse

from idp.admin import consents
from idp.admin.documents import consent_document
from idp.admin.users import UserRef
from idp.cli import base
from idp.cli.base import Commands
from idp.config import Settings

USER_HELP = "the user's username or id"
CLIENT_HELP = "the client's client_id"

COLUMNS: list[base.Column] = [
    ("USERNAME", lambda d: d["username"]),
    ("USER ID", lambda d: d["user_id"]),
    ("CLIENT ID", lambda d: d["client_id"]),
    ("CLIENT NAME", lambda d: d["client_name"]),
    ("SCOPE", lambda d: d["scope"]),
    ("GRANTED", lambda d: d["granted_at"]),
]


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    user = UserRef.either(args.user) if args.user is not None else None
    found = base.read(settings, lambda ctx: consents.list_consents(ctx, user, args.client))
    base.print_list(args.json, found, consent_document, COLUMNS, "no consents")


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user = base.run(settings, lambda ctx: consents.revoke_consent(ctx, ref, args.client_id))
    base.emit(
        {"user_id": user.id, "username": user.username, "client_id": args.client_id,
         "revoked": True},
        args.json,
        lambda d: f"revoked the consent of user {d['username']} to client {d['client_id']}; "
        "its refresh tokens no longer work",
    )  # fmt: skip


def add_commands(commands: Commands) -> None:
    """``idp consents ...``."""
    consents_group = base.group(commands, "consents", "list and revoke users' consents to clients")
    listing = consents_group.add_parser("list", help="list consents, oldest first")
    listing.add_argument(
        "--user", metavar="USERNAME-OR-ID", help=f"only this user's ({USER_HELP}; default: all)"
    )
    listing.add_argument(
        "--client", metavar="CLIENT_ID", help="only consents to this client (default: all)"
    )
    base.finish(listing, cmd_list, writes=False)
    revoke = consents_group.add_parser(
        "revoke", help="revoke a user's consent to a client and the refresh tokens it backed"
    )
    revoke.add_argument("user", metavar="username-or-id", help=USER_HELP)
    revoke.add_argument("client_id", metavar="client_id", help=CLIENT_HELP)
    base.finish(revoke, cmd_revoke)
