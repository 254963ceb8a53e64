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
    ref = UserRef(username=args.username)
    user = base.run(settings, lambda ctx: users.update_user(ctx, ref, update))
    base.emit(user_document(user), args.json, lambda d: f"password of user {d['username']} changed")


def cmd_disable(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef(username=args.username)
    user, ended = base.run(settings, lambda ctx: users.disable_user(ctx, ref), notifies=True)
    base.emit(
        disabled_document(user, ended),
        args.json,
        lambda d: f"disabled user {d['username']}; ended {d['sessions_ended']} session(s)",
    )


def _row(d: base.Document) -> str:
    return f"{d['id']}  {d['username']}  {d['email'] or '-'}"


cmd_list = base.listing(users.list_users, user_document, _row, "no users")


def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    user = base.read(settings, lambda ctx: users.get_user(ctx, UserRef(id=args.user_id)))
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
    update, ref = _update(args), UserRef(id=args.user_id)
    user = base.run(settings, lambda ctx: users.update_user(ctx, ref, update), notifies=True)
    base.emit(user_document(user), args.json, base.record_text)


def cmd_delete(args: argparse.Namespace, settings: Settings) -> None:
    base.run(settings, lambda ctx: users.delete_user(ctx, UserRef(id=args.user_id)), notifies=True)
    base.emit({"id": args.user_id, "deleted": True}, args.json, lambda d: f"deleted user {d['id']}")


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef(username=args.username)
    user, cleared = base.run(settings, lambda ctx: users.unlock_user(ctx, ref))

    def text(document: base.Document) -> str:
        if document["cleared"]:
            return f"unlocked user {document['username']}: failed logins forgotten"
        return f"user {document['username']} had no failed logins to forget"

    base.emit(unlock_document(user, cleared), args.json, text)


def _add_update(commands: Commands) -> None:
    update = commands.add_parser("update", help="change a user")
    update.add_argument("user_id")
    update.add_argument("--email")
    update.add_argument("--no-email", action="store_true")
    update.add_argument("--name")
    update.add_argument("--disable", dest="disabled", action="store_const", const=True)
    update.add_argument("--enable", dest="disabled", action="store_const", const=False)
    update.add_argument("--password-stdin", action="store_true")
    base.finish(update, cmd_update)


def add_commands(commands: Commands) -> None:
    """``idp users ...``."""
    users_group = base.group(commands, "users", "manage users")
    create = users_group.add_parser("create", help="create a user")
    create.add_argument("--username", required=True)
    create.add_argument("--password-stdin", action="store_true")
    create.add_argument("--email")
    create.add_argument("--name")
    base.finish(create, cmd_create)
    password = users_group.add_parser("set-password", help="replace a user's password")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    base.finish(password, cmd_set_password)
    disable = users_group.add_parser("disable", help="disable a user and end their sessions")
    disable.add_argument("username")
    base.finish(disable, cmd_disable)
    base.finish(users_group.add_parser("list", help="list users"), cmd_list, writes=False)
    base.add_show_and_delete(users_group, "user", "user_id", cmd_show, cmd_delete)
    _add_update(users_group)
    unlock = users_group.add_parser("unlock", help="forget a user's failed logins and end a lock")
    unlock.add_argument("username")
    base.finish(unlock, cmd_unlock)
    add_mfa_commands(users_group)


def _mfa_text(document: base.Document) -> str:
    required = "required" if document["mfa_required"] else "not required"
    return (
        f"user {document['username']}: TOTP {document['totp']}, "
        f"{document['recovery_codes_left']} recovery code(s) left, second factor {required}"
    )


def cmd_mfa(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef(username=args.username)
    user, status = base.read(settings, lambda ctx: factors.mfa_status(ctx, ref))
    base.emit(mfa_document(user, status), args.json, _mfa_text)


def cmd_mfa_reset(args: argparse.Namespace, settings: Settings) -> None:
    ref = UserRef(username=args.username)
    user, status, removed = base.run(settings, lambda ctx: factors.reset_mfa(ctx, ref))

    def text(document: base.Document) -> str:
        if document["reset"]:
            return f"second factors of user {document['username']} removed"
        return f"user {document['username']} had no second factor to remove"

    base.emit({**mfa_document(user, status), "reset": removed}, args.json, text)


def cmd_require_mfa(args: argparse.Namespace, settings: Settings) -> None:
    ref, required = UserRef(username=args.username), not args.off
    user, status = base.run(settings, lambda ctx: factors.require_mfa(ctx, ref, required))
    base.emit(mfa_document(user, status), args.json, _mfa_text)


def add_mfa_commands(users_group: Commands) -> None:
    """``idp users mfa|mfa-reset|require-mfa``."""
    show = users_group.add_parser("mfa", help="show a user's second factors")
    show.add_argument("username")
    base.finish(show, cmd_mfa, writes=False)
    reset = users_group.add_parser("mfa-reset", help="remove a user's TOTP and recovery codes")
    reset.add_argument("username")
    base.finish(reset, cmd_mfa_reset)
    require = users_group.add_parser(
        "require-mfa", help="require a second factor at every sign-in of a user"
    )
    require.add_argument("username")
    require.add_argument("--off", action="store_true", help="stop requiring one")
    base.finish(require, cmd_require_mfa)
