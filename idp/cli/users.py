"""``idp users create|list|show|update|set-password|disable|unlock|delete`` and
``mfa|mfa-reset|require-mfa``, over :mod:`idp.admin.users` and :mod:`idp.admin.factors`."""

from __future__ import annotations

import argparse
from typing import Any

from idp.admin import factors, users
from idp.admin.documents import disabled_document, mfa_document, unlock_document, user_document
from idp.admin.users import UserRef, UserUpdate
from idp.cli import base
from idp.cli.base import Commands
from idp.config import Settings

USER_HELP = "the user's username or id"
PASSWORD_HELP = "read the password as one line from standard input (required to set one)"


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    password = base.required_password(args.password_stdin)
    user = base.run(
        settings,
        lambda ctx: users.create_user(
            ctx, args.username, password, email=args.email, name=args.name
        ),
    )
    base.emit(
        user_document(user), args.json, lambda d: f"created user {d['username']} (id {d['id']})"
    )


def cmd_set_password(args: argparse.Namespace, settings: Settings) -> None:
    update = UserUpdate(password=base.required_password(args.password_stdin))
    ref = UserRef.either(args.user)
    user = base.run(settings, lambda ctx: users.update_user(ctx, ref, update))
    base.emit(user_document(user), args.json, lambda d: f"password of user {d['username']} changed")


def cmd_disable(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user, ended = base.run(settings, lambda ctx: users.disable_user(ctx, ref), notifies=True)
    base.emit(
        disabled_document(user, ended),
        args.json,
        lambda d: f"disabled user {d['username']}; ended {d['sessions_ended']} session(s)",
    )


COLUMNS: list[base.Column] = [
    ("ID", lambda d: d["id"]),
    ("USERNAME", lambda d: d["username"]),
    ("EMAIL", lambda d: d["email"]),
    ("NAME", lambda d: d["name"]),
    ("DISABLED", lambda d: "yes" if d["disabled"] else "no"),
    ("CREATED", lambda d: d["created_at"]),
]
cmd_list = base.listing(users.list_users, user_document, COLUMNS, "no users")


def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    user = base.read(settings, lambda ctx: users.get_user(ctx, UserRef.either(args.user)))
    base.emit(user_document(user), args.json, base.record_text)


def _update(args: argparse.Namespace) -> UserUpdate:
    if args.email is not None and args.no_email:
        raise base.CommandError("give --email or --no-email, not both")
    fields: dict[str, Any] = {}
    if args.email is not None or args.no_email:
        fields["email"] = None if args.no_email else args.email
    if args.name is not None:
        fields["name"] = args.name
    if args.disabled is not None:
        fields["disabled"] = args.disabled
    if args.password_stdin:
        fields["password"] = base.read_password()
    return UserUpdate(**fields)


def cmd_update(args: argparse.Namespace, settings: Settings) -> None:
    update, ref = _update(args), UserRef.either(args.user)
    user = base.run(settings, lambda ctx: users.update_user(ctx, ref, update), notifies=True)
    base.emit(user_document(user), args.json, base.record_text)


def cmd_delete(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user = base.run(settings, lambda ctx: users.delete_user(ctx, ref), notifies=True)
    base.emit(
        {"id": user.id, "deleted": True},
        args.json,
        lambda d: f"deleted user {user.username} (id {d['id']})",
    )


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user, cleared = base.run(settings, lambda ctx: users.unlock_user(ctx, ref))

    def text(document: base.Document) -> str:
        if document["cleared"]:
            return f"unlocked user {document['username']}: failed logins forgotten"
        return f"user {document['username']} had no failed logins to forget"

    base.emit(unlock_document(user, cleared), args.json, text)


def _add_update(commands: Commands) -> None:
    update = commands.add_parser("update", help="change a user")
    update.add_argument("user", metavar="username-or-id", help=USER_HELP)
    update.add_argument("--email", help="a new email address (default: unchanged)")
    update.add_argument("--no-email", action="store_true", help="remove the email address")
    update.add_argument("--name", help="a new display name (default: unchanged)")
    update.add_argument(
        "--disable",
        dest="disabled",
        action="store_const",
        const=True,
        help="disable the user and end their sessions",
    )
    update.add_argument(
        "--enable", dest="disabled", action="store_const", const=False, help="enable the user"
    )
    update.add_argument("--password-stdin", action="store_true", help=PASSWORD_HELP)
    base.finish(update, cmd_update)


def add_commands(commands: Commands) -> None:
    """``idp users ...``."""
    users_group = base.group(commands, "users", "manage users")
    create = users_group.add_parser("create", help="create a user")
    create.add_argument("--username", required=True, help="a unique sign-in name (required)")
    create.add_argument("--password-stdin", action="store_true", help=PASSWORD_HELP)
    create.add_argument("--email", help="email address (default: none)")
    create.add_argument("--name", help="display name (default: none)")
    base.finish(create, cmd_create)
    password = users_group.add_parser("set-password", help="replace a user's password")
    password.add_argument("user", metavar="username-or-id", help=USER_HELP)
    password.add_argument("--password-stdin", action="store_true", help=PASSWORD_HELP)
    base.finish(password, cmd_set_password)
    disable = users_group.add_parser("disable", help="disable a user and end their sessions")
    disable.add_argument("user", metavar="username-or-id", help=USER_HELP)
    base.finish(disable, cmd_disable)
    base.finish(users_group.add_parser("list", help="list users"), cmd_list, writes=False)
    base.add_show_and_delete(
        users_group, "user", "user", cmd_show, cmd_delete, USER_HELP, "username-or-id"
    )
    _add_update(users_group)
    unlock = users_group.add_parser("unlock", help="forget a user's failed logins and end a lock")
    unlock.add_argument("user", metavar="username-or-id", help=USER_HELP)
    base.finish(unlock, cmd_unlock)
    add_mfa_commands(users_group)


def _mfa_text(document: base.Document) -> str:
    required = "required" if document["mfa_required"] else "not required"
    return (
        f"user {document['username']}: TOTP {document['totp']}, "
        f"{document['recovery_codes_left']} recovery code(s) left, second factor {required}"
    )


def cmd_mfa(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user, status = base.read(settings, lambda ctx: factors.mfa_status(ctx, ref))
    base.emit(mfa_document(user, status), args.json, _mfa_text)


def cmd_mfa_reset(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef.either(args.user)
    user, status, removed = base.run(settings, lambda ctx: factors.reset_mfa(ctx, ref))

    def text(document: base.Document) -> str:
        if document["reset"]:
            return f"second factors of user {document['username']} removed"
        return f"user {document['username']} had no second factor to remove"

    base.emit({**mfa_document(user, status), "reset": removed}, args.json, text)


def cmd_require_mfa(args: argparse.Namespace, settings: Settings) -> None:
    ref, required = UserRef.either(args.user), not args.off
    user, status = base.run(settings, lambda ctx: factors.require_mfa(ctx, ref, required))
    base.emit(mfa_document(user, status), args.json, _mfa_text)


def add_mfa_commands(users_group: Commands) -> None:
    """``idp users mfa|mfa-reset|require-mfa``."""
    show = users_group.add_parser("mfa", help="show a user's second factors")
    show.add_argument("user", metavar="username-or-id", help=USER_HELP)
    base.finish(show, cmd_mfa, writes=False)
    reset = users_group.add_parser(
        "mfa-reset", help="remove a user's TOTP, recovery codes and passkeys"
    )
    reset.add_argument("user", metavar="username-or-id", help=USER_HELP)
    base.finish(reset, cmd_mfa_reset)
    require = users_group.add_parser(
        "require-mfa", help="require a second factor at every sign-in of a user"
    )
    require.add_argument("user", metavar="username-or-id", help=USER_HELP)
    require.add_argument("--off", action="store_true", help="stop requiring one")
    base.finish(require, cmd_require_mfa)
