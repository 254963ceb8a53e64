"""``idp clients create|list|show|update|delete|rotate-secret|registration-token|
registration-tokens|revoke-registration-token``: OAuth clients and the initial access tokens
that let applications register themselves, over :mod:`idp.admin.clients` and
:mod:`idp.admin.registration`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from idp.admin import clients, registration
from idp.admin.context import AdminContext
from idp.admin.documents import (
    client_document,
    initial_access_token_document,
    initial_access_token_summary_document,
    rotated_secret_document,
)
from idp.cli import base
from idp.cli.base import Commands
from idp.config import ConfigError, Settings, parse_duration
from idp.oauth.client_auth import AUTH_METHODS
from idp.oauth.registration import GRANT_TYPES, ClientRequest, ClientUpdate

GRANT_HELP = "a grant the client may use: %(choices)s (repeat for several)"
REDIRECT_HELP = (
    "an exact redirect URI: https, http on loopback, or a reverse-domain private scheme "
    "(repeat for several)"
)
LOGOUT_HELP = "an exact post-logout redirect URI, same rules (repeat for several)"
AUDIENCE_HELP = "an absolute URI tokens may be addressed to (RFC 8707 resource; repeat)"
BACKCHANNEL_HELP = (
    "where logout tokens are posted when a session ends (https; public hosts only unless "
    "IDP_ALLOW_PRIVATE_BACKCHANNEL=1)"
)


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
        require_par=args.require_par,
        jwks=_read_jwks(args.jwks),
        jwks_uri=args.jwks_uri,
        require_dpop=args.require_dpop,
        token_exchange_subject_clients=args.token_exchange_subject_client,
    )

    async def work(ctx: AdminContext) -> base.Document:
        record, secret = await clients.create_client(ctx, request, admin=args.admin)
        return client_document(record, secret)

    base.emit(base.run(settings, work), args.json, base.record_text)


COLUMNS: list[base.Column] = [
    ("CLIENT ID", lambda d: d["client_id"]),
    ("NAME", lambda d: d["name"]),
    ("GRANT TYPES", lambda d: ",".join(d["grant_types"])),
    ("AUTH METHOD", lambda d: d["token_endpoint_auth_method"]),
    ("CREATED", lambda d: d["created_at"]),
]
cmd_list = base.listing(clients.list_clients, client_document, COLUMNS, "no clients")


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
        require_par=args.require_par,
        jwks=_read_jwks(args.jwks),
        jwks_uri=args.jwks_uri,
        require_dpop=args.require_dpop,
        token_exchange_subject_clients=_replacement(
            args.token_exchange_subject_client, args.no_token_exchange_subject_clients
        ),
    )
    record = base.run(settings, lambda ctx: clients.update_client(ctx, args.client_id, update))
    base.emit(client_document(record), args.json, base.record_text)


def _read_jwks(path: str | None) -> str | None:
    """The JWK Set document in ``path`` (``-``: standard input), or None."""
    if path is None:
        return None
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise base.CommandError(f"cannot read the JWK Set from {path}: {exc}") from None


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


def cmd_rotate_secret(args: argparse.Namespace, settings: Settings) -> None:
    record, secret = base.run(
        settings, lambda ctx: clients.rotate_client_secret(ctx, args.client_id, args.keep_old)
    )

    def text(d: base.Document) -> str:
        until = d["previous_secret_expires_at"]
        old = f"the old secret works until {until}" if until else "the old secret works no more"
        return (
            f"client_id: {d['client_id']}\nclient_secret: {d['client_secret']}\n"
            f"({old}; the new secret is shown only this once; store it now)"
        )

    base.emit(rotated_secret_document(record, secret), args.json, text)


def cmd_registration_token(args: argparse.Namespace, settings: Settings) -> None:
    uses = 1 if args.single_use else args.uses

    async def work(ctx: AdminContext) -> base.Document:
        record, token = await registration.create_initial_access_token(ctx, args.expires_in, uses)
        return initial_access_token_document(record, token)

    def text(d: base.Document) -> str:
        uses_text = "any number of registrations" if d["uses"] is None else f"{d['uses']} use(s)"
        return (
            f"id: {d['id']}\ninitial_access_token: {d['initial_access_token']}\n"
            f"(works until {d['expires_at']} for {uses_text}; send it as "
            "Authorization: Bearer to POST /register; shown only this once)"
        )

    base.emit(base.run(settings, work), args.json, text)


TOKEN_COLUMNS: list[base.Column] = [
    ("ID", lambda d: d["id"]),
    ("CREATED", lambda d: d["created_at"]),
    ("EXPIRES", lambda d: d["expires_at"]),
    ("USES LEFT", lambda d: "any" if d["uses_left"] is None else d["uses_left"]),
]


def cmd_registration_tokens(args: argparse.Namespace, settings: Settings) -> None:
    found = base.read(settings, lambda ctx: registration.list_initial_access_tokens(ctx, args.all))
    empty = (
        "no initial access tokens"
        if args.all
        else "no live initial access tokens (--all shows expired and used-up ones)"
    )
    base.print_list(args.json, found, initial_access_token_summary_document, TOKEN_COLUMNS, empty)


def cmd_revoke_registration_token(args: argparse.Namespace, settings: Settings) -> None:
    base.run(settings, lambda ctx: registration.revoke_initial_access_token(ctx, args.token_id))
    base.emit(
        {"id": args.token_id, "revoked": True},
        args.json,
        lambda d: f"revoked initial access token {d['id']} (it registers no more clients)",
    )


def _duration(option: str, text: str, *, allow_zero: bool = False) -> int:
    """A duration option's seconds (``90s``, ``15m``, ``24h``, ``7d``), or argparse's error."""
    try:
        return parse_duration(option, text, allow_zero=allow_zero)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def lifetime(text: str) -> int:
    """``--expires-in``: a duration (``90s``, ``15m``, ``24h``, ``7d``)."""
    return _duration("--expires-in", text)


def overlap(text: str) -> int:
    """``--keep-old``: a duration (``0``, ``90s``, ``15m``, ``24h``, ``7d``)."""
    return _duration("--keep-old", text, allow_zero=True)


_REQUIRE_MFA = "every sign-in for this client needs a second factor (acr urn:idp:acr:mfa)"
_JWKS_HELP = (
    "a file holding the client's public keys as a JWK Set, for private_key_jwt and request "
    "objects (each key with kid and alg: RS256, PS256 or ES256; - reads standard input)"
)
_JWKS_URI_HELP = (
    "the https URL where the client publishes its JWK Set (private_key_jwt, request "
    "objects); fetched and cached by the server"
)
_REQUIRE_PAR = (
    "the client must push its authorization requests to /par first (RFC 9126); "
    "/authorize refuses its requests otherwise"
)
_SUBJECT_CLIENT_HELP = (
    "token exchange (RFC 8693): a client whose tokens this client may exchange (repeat for several)"
)
_REQUIRE_DPOP = (
    "every token request of this client must carry a DPoP proof, so all its access tokens "
    "are DPoP-bound (RFC 9449)"
)


def _add_create(commands: Commands) -> None:
    create = commands.add_parser("create", help="register a client")
    create.add_argument("--name", required=True, help="a unique name (required)")
    create.add_argument("--redirect-uri", action="append", default=[], help=REDIRECT_HELP)
    create.add_argument("--post-logout-redirect-uri", action="append", default=[], help=LOGOUT_HELP)
    create.add_argument(
        "--grant-type",
        action="append",
        default=[],
        choices=GRANT_TYPES,
        help=GRANT_HELP + "; default: authorization_code and refresh_token with a redirect "
        "URI, else client_credentials (a public client: authorization_code)",
    )
    create.add_argument(
        "--scope",
        default="",
        help='the client\'s own scopes, space-separated ("a b"), added to openid profile '
        "email offline_access (default: none)",
    )
    create.add_argument("--audience", action="append", default=[], help=AUDIENCE_HELP)
    create.add_argument(
        "--public",
        action="store_true",
        help="a public client (no secret, auth method none, PKCE); default: confidential",
    )
    create.add_argument(
        "--admin",
        action="store_true",
        help="a client for the admin API: scope idp:admin, audience <issuer>/admin",
    )
    create.add_argument(
        "--token-endpoint-auth-method",
        choices=AUTH_METHODS,
        help="how the client authenticates at /token: %(choices)s (default: "
        "client_secret_basic, none for a public client; client_secret_jwt signs HS256 "
        "assertions with the secret shown once; private_key_jwt needs --jwks or --jwks-uri)",
    )
    create.add_argument("--jwks", metavar="FILE", help=_JWKS_HELP)
    create.add_argument("--jwks-uri", metavar="URL", help=_JWKS_URI_HELP)
    create.add_argument(
        "--access-token-alg",
        choices=["RS256", "ES256"],
        default="RS256",
        help="algorithm of its access tokens: %(choices)s (default: %(default)s)",
    )
    create.add_argument(
        "--id-token-alg",
        choices=["RS256", "ES256"],
        default="RS256",
        help="algorithm of its ID tokens: %(choices)s (default: %(default)s)",
    )
    create.add_argument(
        "--require-consent",
        action="store_true",
        help="show a consent page before the client gets access (default: first-party client)",
    )
    create.add_argument("--backchannel-logout-uri", metavar="URI", help=BACKCHANNEL_HELP)
    create.add_argument("--require-mfa", action="store_true", help=_REQUIRE_MFA)
    create.add_argument("--require-par", action="store_true", help=_REQUIRE_PAR)
    create.add_argument("--require-dpop", action="store_true", help=_REQUIRE_DPOP)
    create.add_argument(
        "--token-exchange-subject-client",
        action="append",
        default=[],
        metavar="CLIENT_ID",
        help=_SUBJECT_CLIENT_HELP + " (default: tokens of any client)",
    )
    base.finish(create, cmd_create)


def _add_update(commands: Commands) -> None:
    update = commands.add_parser("update", help="change a client's metadata")
    keep = "; replaces the whole list (default: unchanged)"
    update.add_argument("client_id", help="the client's id")
    update.add_argument("--name", help="a new unique name (default: unchanged)")
    update.add_argument("--redirect-uri", action="append", default=[], help=REDIRECT_HELP + keep)
    update.add_argument("--no-redirect-uris", action="store_true", help="remove every redirect URI")
    update.add_argument(
        "--post-logout-redirect-uri", action="append", default=[], help=LOGOUT_HELP + keep
    )
    update.add_argument(
        "--no-post-logout-redirect-uris",
        action="store_true",
        help="remove every post-logout redirect URI",
    )
    update.add_argument(
        "--grant-type", action="append", default=[], choices=GRANT_TYPES, help=GRANT_HELP + keep
    )
    update.add_argument(
        "--scope", help='the client\'s own scopes, space-separated ("a b") (default: unchanged)'
    )
    update.add_argument("--audience", action="append", default=[], help=AUDIENCE_HELP + keep)
    update.add_argument("--no-audiences", action="store_true", help="remove every audience")
    update.add_argument(
        "--backchannel-logout-uri", metavar="URI", help=BACKCHANNEL_HELP + " (default: unchanged)"
    )
    update.add_argument(
        "--no-backchannel-logout-uri", action="store_true", help="remove the back-channel URI"
    )
    update.add_argument(
        "--require-mfa",
        action="store_const",
        const=True,
        help=_REQUIRE_MFA + " (default: unchanged)",
    )
    update.add_argument(
        "--no-require-mfa",
        dest="require_mfa",
        action="store_const",
        const=False,
        help="sign-ins for this client need a second factor only when the user has one",
    )
    update.add_argument("--jwks", metavar="FILE", help=_JWKS_HELP + " (replaces its keys)")
    update.add_argument("--jwks-uri", metavar="URL", help=_JWKS_URI_HELP + " (replaces its keys)")
    update.add_argument(
        "--require-par",
        action="store_const",
        const=True,
        help=_REQUIRE_PAR + " (default: unchanged)",
    )
    update.add_argument(
        "--no-require-par",
        dest="require_par",
        action="store_const",
        const=False,
        help="the client may send authorization requests to /authorize directly",
    )
    update.add_argument(
        "--require-dpop",
        action="store_const",
        const=True,
        help=_REQUIRE_DPOP + " (default: unchanged)",
    )
    update.add_argument(
        "--no-require-dpop",
        dest="require_dpop",
        action="store_const",
        const=False,
        help="the client may also get bearer tokens (without a DPoP proof)",
    )
    update.add_argument(
        "--token-exchange-subject-client",
        action="append",
        default=[],
        metavar="CLIENT_ID",
        help=_SUBJECT_CLIENT_HELP + keep,
    )
    update.add_argument(
        "--no-token-exchange-subject-clients",
        action="store_true",
        help="the client may exchange tokens issued to any client",
    )
    base.finish(update, cmd_update)


def add_commands(commands: Commands) -> None:
    """``idp clients ...``."""
    clients_group = base.group(commands, "clients", "manage OAuth clients")
    _add_create(clients_group)
    base.finish(clients_group.add_parser("list", help="list clients"), cmd_list, writes=False)
    base.add_show_and_delete(
        clients_group, "client", "client_id", cmd_show, cmd_delete, "the client's id"
    )
    _add_update(clients_group)
    rotate = clients_group.add_parser(
        "rotate-secret", help="give a client a new secret, keeping the old one for a while"
    )
    rotate.add_argument("client_id", help="the client's id")
    rotate.add_argument(
        "--keep-old",
        type=overlap,
        default=0,
        metavar="DURATION",
        help="how long the old secret stays valid beside the new one (90s, 15m, 24h, 7d; at "
        "most 30d); default: 0, it stops working at once",
    )
    base.finish(rotate, cmd_rotate_secret)
    _add_registration_token(clients_group)


def _add_registration_token(commands: Commands) -> None:
    token = commands.add_parser(
        "registration-token",
        help="make an initial access token that lets an app register itself at /register",
    )
    token.add_argument(
        "--expires-in",
        type=lifetime,
        default=86400,
        metavar="DURATION",
        help="how long the token works: 90s, 15m, 24h, 7d (at most 365d; default: 1d)",
    )
    uses = token.add_mutually_exclusive_group()
    uses.add_argument(
        "--uses",
        type=base.positive,
        metavar="N",
        help="how many registrations it allows (default: any until it expires)",
    )
    uses.add_argument(
        "--single-use", action="store_true", help="one registration only (as --uses 1)"
    )
    base.finish(token, cmd_registration_token)
    listing = commands.add_parser(
        "registration-tokens",
        help="list the initial access tokens that can still register a client (never the tokens)",
    )
    listing.add_argument(
        "--all",
        action="store_true",
        help="also expired and used-up ones (housekeeping deletes expired ones)",
    )
    base.finish(listing, cmd_registration_tokens, writes=False)
    revoke = commands.add_parser(
        "revoke-registration-token",
        help="revoke an initial access token: it registers no more clients",
    )
    revoke.add_argument("token_id", metavar="ID", help="the token's id, as listed")
    base.finish(revoke, cmd_revoke_registration_token)
