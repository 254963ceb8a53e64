"""``idp clients create|list|show|update|delete``: OAuth clients, over :mod:`idp.admin.clients`."""

from __future__ import annotations

import argparse

from idp.admin import clients
from idp.admin.context import AdminContext
from idp.admin.documents import client_document
from idp.cli import base
from idp.cli.base import Commands
from idp.config import Settings
from idp.oauth.registration import ClientRequest, ClientUpdate


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    request = ClientRequest(
        name=args.name,
        redirect_uris=args.redirect_uri,
        post_logout_redirect_uris=args.post_logout_redirect_uri,
        grant_types=args.grant_type,
        scope=args.scope,
        audiences=args.audience,
        public=args.public,
        token_endpoint_auth_method=args.token_endpoint_auth_method,
        access_token_alg=args.access_token_alg,
        id_token_alg=args.id_token_alg,
        require_consent=args.require_consent,
        backchannel_logout_uri=args.backchannel_logout_uri,
        require_mfa=args.require_mfa,
    )

    async def work(ctx: AdminContext) -> base.Document:
        record, secret = await clients.create_client(ctx, request, admin=args.admin)
        return client_document(record, secret)

    base.emit(base.run(settings, work), args.json, base.record_text)


def _row(d: base.Document) -> str:
    return f"{d['client_id']}  {d['name']}  {','.join(d['grant_types'])}"


cmd_list = base.listing(clients.list_clients, client_document, _row, "no clients")


def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    record = base.read(settings, lambda ctx: clients.get_client(ctx, args.client_id))
    base.emit(client_document(record), args.json, base.record_text)


def cmd_update(args: argparse.Namespace, settings: Settings) -> None:
    update = ClientUpdate(
        name=args.name,
        redirect_uris=_replacement(args.redirect_uri, args.no_redirect_uris),
        post_logout_redirect_uris=_replacement(
            args.post_logout_redirect_uri, args.no_post_logout_redirect_uris
        ),
        grant_types=args.grant_type or None,
        scope=args.scope,
        audiences=_replacement(args.audience, args.no_audiences),
        backchannel_logout_uri=(
            "" if args.no_backchannel_logout_uri else args.backchannel_logout_uri
        ),
        require_mfa=args.require_mfa,
    )
    record = base.run(settings, lambda ctx: clients.update_client(ctx, args.client_id, update))
    base.emit(client_document(record), args.json, base.record_text)


def _replacement(values: list[str], clear: bool) -> list[str] | None:
    """A new list for a repeatable option: the values given, [] to clear, None to keep."""
    if clear and values:
        raise base.CommandError("give new values or clear the list, not both")
    return [] if clear else (values or None)


def cmd_delete(args: argparse.Namespace, settings: Settings) -> None:
    base.run(settings, lambda ctx: clients.delete_client(ctx, args.client_id))
    base.emit(
        {"client_id": args.client_id, "deleted": True},
        args.json,
        lambda d: f"deleted client {d['client_id']}",
    )


_REQUIRE_MFA = "every sign-in for this client needs a second factor (acr urn:idp:acr:mfa)"


def _add_create(commands: Commands) -> None:
    create = commands.add_parser("create", help="register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[])
    create.add_argument("--post-logout-redirect-uri", action="append", default=[])
    create.add_argument("--grant-type", action="append", default=[])
    create.add_argument("--scope", default="")
    create.add_argument("--audience", action="append", default=[])
    create.add_argument("--public", action="store_true")
    create.add_argument(
        "--admin",
        action="store_true",
        help="a client for the admin API: scope idp:admin, audience <issuer>/admin",
    )
    create.add_argument(
        "--token-endpoint-auth-method",
        choices=["client_secret_basic", "client_secret_post", "none"],
    )
    create.add_argument("--access-token-alg", choices=["RS256", "ES256"], default="RS256")
    create.add_argument("--id-token-alg", choices=["RS256", "ES256"], default="RS256")
    create.add_argument(
        "--require-consent",
        action="store_true",
        help="show a consent page before the client gets access (default: first-party client)",
    )
    create.add_argument(
        "--backchannel-logout-uri",
        metavar="URI",
        help="where logout tokens are posted when a session ends (https; public hosts only "
        "unless IDP_ALLOW_PRIVATE_BACKCHANNEL=1)",
    )
    create.add_argument("--require-mfa", action="store_true", help=_REQUIRE_MFA)
    base.finish(create, cmd_create)


def _add_update(commands: Commands) -> None:
    update = commands.add_parser("update", help="change a client's metadata")
    update.add_argument("client_id")
    update.add_argument("--name")
    update.add_argument("--redirect-uri", action="append", default=[])
    update.add_argument("--no-redirect-uris", action="store_true")
    update.add_argument("--post-logout-redirect-uri", action="append", default=[])
    update.add_argument("--no-post-logout-redirect-uris", action="store_true")
    update.add_argument("--grant-type", action="append", default=[])
    update.add_argument("--scope")
    update.add_argument("--audience", action="append", default=[])
    update.add_argument("--no-audiences", action="store_true")
    update.add_argument("--backchannel-logout-uri", metavar="URI")
    update.add_argument("--no-backchannel-logout-uri", action="store_true")
    update.add_argument("--require-mfa", action="store_const", const=True, help=_REQUIRE_MFA)
    update.add_argument("--no-require-mfa", dest="require_mfa", action="store_const", const=False)
    base.finish(update, cmd_update)


def add_commands(commands: Commands) -> None:
    """``idp clients ...``."""
    clients_group = base.group(commands, "clients", "manage OAuth clients")
    _add_create(clients_group)
    base.finish(clients_group.add_parser("list", help="list clients"), cmd_list, writes=False)
    base.add_show_and_delete(clients_group, "client", "client_id", cmd_show, cmd_delete)
    _add_update(clients_group)
