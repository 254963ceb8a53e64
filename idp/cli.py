"""The ``idp`` admin command: migrate, serve, and manage clients, users and keys.

Every command reads the same ``IDP_*`` environment as the server. Errors print one line on
stderr and exit 1 (2 for usage and configuration errors); with ``--json`` stdout holds
exactly one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from idp.clock import system_clock
from idp.config import (
    ConfigError,
    Settings,
    load_settings,
    new_key_encryption_key,
    parse_duration,
    read_key_file,
    replace_key_file,
)
from idp.keyring.admin import ensure_key_rings, import_key, revoke_key, rewrap_keys, rotate_now
from idp.keyring.kek import check_store, provide_key_file
from idp.keyring.lifecycle import KeyRingError, LifecyclePolicy, settings_warnings
from idp.keyring.material import KeyImportError, KeyMaterialError
from idp.keyring.ring import KeyRingService
from idp.management import (
    InvalidUser,
    UserUpdate,
    audit_document,
    client_document,
    create_client,
    create_user,
    delete_client,
    delete_user,
    disable_user,
    end_user_access,
    get_user,
    key_document,
    key_documents,
    ring_status_documents,
    rotation_document,
    set_password,
    update_client,
    update_user,
    user_document,
)
from idp.oauth.registration import (
    ClientRequest,
    ClientUpdate,
    InvalidClientMetadata,
    admin_client_request,
)
from idp.oauth.uris import backchannel_rules
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.throttle import clear_account
from idp.store import make_store
from idp.store.base import (
    AuditEntry,
    KeyRecord,
    NotFound,
    SchemaOutdated,
    SchemaStatus,
    Store,
    StoreError,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
MAX_PEM_BYTES = 64 * 1024


class CommandError(Exception):
    """A command failed for a reason the user can act on (one line, exit 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def cli_actor() -> str:
    """The audit trail's name for whoever runs the command: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _print(document: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(text(document) + "\n")


async def _with_store(
    settings: Settings,
    work: Callable[[Store], Awaitable[Any]],
    *,
    schema: bool = True,
    writes: bool = True,
) -> Any:
    """Run ``work`` on the store, after checking its schema (``schema``) and, for a command
    that ``writes``, that the key-encryption key opens every key in the ring. Only a command
    that makes the schema (no ``schema`` check) may create the SQLite file."""
    store = make_store(settings.database_url, create=not schema)
    await store.open()
    try:
        if schema:
            _require_schema(await store.schema_status(), store.description)
        if writes:
            await check_store(store, settings)
        return await work(store)
    finally:
        await store.close()


def _read(settings: Settings, work: Callable[[Store], Awaitable[Any]]) -> Any:
    """Run a read-only command's ``work``: no file created, no key needed."""
    return asyncio.run(_with_store(settings, work, writes=False))


def _require_schema(status: SchemaStatus, database: str) -> None:
    """Raise SchemaOutdated, naming the database looked at, unless the schema is current."""
    if not status.applied:
        raise SchemaOutdated(
            f"the database schema is missing in {database}; run `idp migrate` first"
        )
    if not status.up_to_date:
        missing = ", ".join(f"{v:04d}" for v in status.pending)
        raise SchemaOutdated(
            f"the database schema is out of date in {database} (missing migrations {missing}); "
            "run `idp migrate` first"
        )


def _provide_key_file(settings: Settings, needs_schema: bool) -> Settings:
    """For a writing command on a SQLite store without its key file: create the file when the
    store holds no sealed keys (ConfigError, nothing created, when it does)."""

    async def provide(store: Store) -> Settings:
        return await provide_key_file(store, settings)

    provided: Settings = asyncio.run(
        _with_store(settings, provide, schema=needs_schema, writes=False)
    )
    return provided


# -- migrate ------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    applied: list[int] = asyncio.run(_with_store(settings, lambda s: s.migrate(), schema=False))
    if applied:
        print(f"applied migrations {', '.join(f'{v:04d}' for v in applied)}")
    else:
        print("schema is up to date")


# -- clients ------------------------------------------------------------------------------


def _client_text(document: dict[str, Any]) -> str:
    lines = [f"{name}: {_text_value(value)}" for name, value in document.items()]
    if "client_secret" in document:
        lines.append("(the client secret is shown only this once; store it now)")
    return "\n".join(lines)


def _text_value(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)


def cmd_clients_create(args: argparse.Namespace, settings: Settings) -> None:
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
    )
    if args.admin:
        request = admin_client_request(request, settings.issuer)

    async def work(store: Store) -> dict[str, Any]:
        record, secret = await create_client(
            store, request, actor=cli_actor(), backchannel=backchannel_rules(settings)
        )
        return client_document(record, secret)

    _print(asyncio.run(_with_store(settings, work)), args.json, _client_text)


def cmd_clients_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> list[dict[str, Any]]:
        return [client_document(c) for c in await store.list_clients()]

    def text(documents: list[dict[str, Any]]) -> str:
        rows = [f"{d['client_id']}  {d['name']}  {','.join(d['grant_types'])}" for d in documents]
        return "\n".join(rows) if rows else "no clients"

    _print(_read(settings, work), args.json, text)


def cmd_clients_show(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        client = await store.get_client(args.client_id)
        if client is None:
            raise NotFound(f"no client with client_id {args.client_id!r}")
        return client_document(client)

    _print(_read(settings, work), args.json, _client_text)


def cmd_clients_update(args: argparse.Namespace, settings: Settings) -> None:
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
    )

    async def work(store: Store) -> dict[str, Any]:
        rules = backchannel_rules(settings)
        record = await update_client(
            store, args.client_id, update, actor=cli_actor(), backchannel=rules
        )
        return client_document(record)

    _print(asyncio.run(_with_store(settings, work)), args.json, _client_text)


def _replacement(values: list[str], clear: bool) -> list[str] | None:
    """A new list for a repeatable option: the values given, [] to clear, None to keep."""
    if clear and values:
        raise CommandError("give new values or clear the list, not both")
    return [] if clear else (values or None)


def cmd_clients_delete(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        await delete_client(store, args.client_id, actor=cli_actor())
        return {"client_id": args.client_id, "deleted": True}

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"deleted client {d['client_id']}",
    )


# -- users --------------------------------------------------------------------------------


def _read_password() -> str:
    try:
        line = sys.stdin.buffer.readline().decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("--password-stdin: the password is not valid UTF-8") from None
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if not line:
        raise CommandError("--password-stdin: no password on standard input")
    return line


def cmd_users_create(args: argparse.Namespace, settings: Settings) -> None:
    if not args.password_stdin:
        raise CommandError("a password is required: pass --password-stdin and pipe it in")
    password = _read_password()

    async def work(store: Store) -> dict[str, Any]:
        user = await create_user(
            store,
            args.username,
            password,
            email=args.email,
            name=args.name,
            actor=cli_actor(),
            password_min_length=settings.password_min_length,
        )
        return user_document(user)

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"created user {d['username']} (id {d['id']})",
    )


@contextlib.asynccontextmanager
async def _notifier(store: Store, settings: Settings) -> AsyncIterator[BackchannelNotifier]:
    """A back-channel logout notifier for one command; waits for its deliveries at the end."""
    keys = KeyRingService(
        store,
        settings.key_encryption_key,
        settings.key_ring_poll_interval,
        settings.key_prepublish,
    )
    await keys.load()
    notifier = BackchannelNotifier(settings, keys, system_clock)
    try:
        yield notifier
    finally:
        await notifier.aclose()


def cmd_users_set_password(args: argparse.Namespace, settings: Settings) -> None:
    if not args.password_stdin:
        raise CommandError("a password is required: pass --password-stdin and pipe it in")
    password = _read_password()

    async def work(store: Store) -> dict[str, Any]:
        user = await set_password(
            store,
            args.username,
            password,
            actor=cli_actor(),
            password_min_length=settings.password_min_length,
        )
        return user_document(user)

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"password of user {d['username']} changed",
    )


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        async with _notifier(store, settings) as notifier:
            user, ended = await disable_user(
                store, args.username, actor=cli_actor(), notifier=notifier
            )
        return {**user_document(user), "disabled": True, "sessions_ended": ended}

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"disabled user {d['username']}; ended {d['sessions_ended']} session(s)",
    )


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> list[dict[str, Any]]:
        return [user_document(u) for u in await store.list_users()]

    def text(documents: list[dict[str, Any]]) -> str:
        rows = [f"{d['id']}  {d['username']}  {d['email'] or '-'}" for d in documents]
        return "\n".join(rows) if rows else "no users"

    _print(_read(settings, work), args.json, text)


def cmd_users_show(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        return user_document(await get_user(store, args.user_id))

    _print(_read(settings, work), args.json, _client_text)


def cmd_users_update(args: argparse.Namespace, settings: Settings) -> None:
    if args.email is not None and args.no_email:
        raise CommandError("give --email or --no-email, not both")
    fields: dict[str, Any] = {}
    if args.email is not None or args.no_email:
        fields["email"] = None if args.no_email else args.email
    if args.name is not None:
        fields["name"] = args.name
    if args.disabled is not None:
        fields["disabled"] = args.disabled
    if args.password_stdin:
        fields["password"] = _read_password()
    update = UserUpdate(**fields)

    async def work(store: Store) -> dict[str, Any]:
        async with _notifier(store, settings) as notifier:
            user = await update_user(
                store,
                args.user_id,
                update,
                actor=cli_actor(),
                notifier=notifier,
                password_min_length=settings.password_min_length,
            )
        return user_document(user)

    _print(asyncio.run(_with_store(settings, work)), args.json, _client_text)


def cmd_users_delete(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        user = await get_user(store, args.user_id)
        async with _notifier(store, settings) as notifier:
            await end_user_access(store, user.id, notifier=notifier)
        await delete_user(store, user.id, actor=cli_actor())
        return {"id": args.user_id, "deleted": True}

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"deleted user {d['id']}",
    )


def cmd_users_unlock(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        user = await store.get_user_by_username(args.username)
        if user is None:
            raise NotFound(f"no user named {args.username!r}")
        audit = AuditEntry(
            time.time(), cli_actor(), "user.unlock", user.id, detail={"username": user.username}
        )
        cleared = await clear_account(store, user.username, audit)
        return {"id": user.id, "username": user.username, "unlocked": True, "cleared": cleared}

    def text(document: dict[str, Any]) -> str:
        if document["cleared"]:
            return f"unlocked user {document['username']}: failed logins forgotten"
        return f"user {document['username']} had no failed logins to forget"

    _print(asyncio.run(_with_store(settings, work)), args.json, text)


# -- keys ---------------------------------------------------------------------------------


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> None:
    policy = LifecyclePolicy.from_settings(settings)

    async def work(store: Store) -> list[dict[str, Any]]:
        return key_documents(await store.list_keys(), policy)

    def text(documents: list[dict[str, Any]]) -> str:
        rows = [
            f"{d['kid']}  {d['alg']}  {d['state']:<8} created {d['created_at']}"
            f"  activated {d['activated_at'] or '-'}  retired {d['retired_at'] or '-'}"
            f"  revoked {d['revoked_at'] or '-'}  next: "
            + (
                f"{d['next_transition']} at {d['next_transition_at']}"
                if d["next_transition"]
                else "-"
            )
            for d in documents
        ]
        return "\n".join(rows) if rows else "no keys"

    _print(_read(settings, work), args.json, text)


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    policy = LifecyclePolicy.from_settings(settings)

    async def work(store: Store) -> list[dict[str, Any]]:
        keys = await store.list_keys()
        return ring_status_documents(keys, settings.signing_algs, policy, time.time())

    def text(documents: list[dict[str, Any]]) -> str:
        return "\n".join(d["summary"] for d in documents)

    _print(_read(settings, work), args.json, text)


def cmd_keys_import(args: argparse.Namespace, settings: Settings) -> None:
    try:
        with open(args.pem, "rb") as handle:
            pem = handle.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"--pem {args.pem}: {exc.strerror or exc}") from None
    if len(pem) > MAX_PEM_BYTES:
        raise CommandError(f"--pem {args.pem}: larger than a PEM private key can be")

    async def work(store: Store) -> dict[str, Any]:
        try:
            record = await import_key(store, settings, args.alg, pem, actor=cli_actor())
        except KeyImportError as exc:
            raise CommandError(f"--pem {args.pem}: {exc}") from None
        return key_document(record)

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: (
            f"imported {d['alg']} key {d['kid']} as next; it starts signing at a "
            "rotation once published for IDP_KEY_PREPUBLISH"
        ),
    )


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    algs = [args.alg] if args.alg else list(settings.signing_algs)

    async def work(store: Store) -> list[dict[str, Any]]:
        return [
            rotation_document(r) for r in await rotate_now(store, settings, algs, actor=cli_actor())
        ]

    results = asyncio.run(_with_store(settings, work))
    for result in results:
        if result["warning"]:
            sys.stderr.write(f"idp: warning: {result['warning']}\n")
    document: Any = results[0] if len(results) == 1 else results

    def text(_: Any) -> str:
        return "\n".join(
            f"{r['alg']}: active {r['active_kid']}, retired {r['retired_kid'] or '-'}, "
            f"next {r['next_kid']}"
            for r in results
        )

    _print(document, args.json, text)


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> dict[str, Any]:
        return key_document(await revoke_key(store, settings, args.kid, actor=cli_actor()))

    _print(
        asyncio.run(_with_store(settings, work)),
        args.json,
        lambda d: f"revoked {d['alg']} key {d['kid']} at {d['revoked_at']}",
    )


def cmd_keys_rewrap(args: argparse.Namespace, settings: Settings) -> None:
    new_file = Path(args.new_key_file)
    try:
        new_key = read_key_file("--new-key-file", new_file)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None

    async def work(store: Store) -> list[KeyRecord]:
        return await rewrap_keys(store, settings, new_key, actor=cli_actor())

    rewrapped: list[KeyRecord] = asyncio.run(_with_store(settings, work))
    key_file = settings.key_encryption_key_file
    if key_file is not None:
        try:
            replace_key_file(key_file, new_file.read_text())
        except OSError as exc:
            raise CommandError(
                f"the keys are sealed under the new key, but {key_file} could not be replaced "
                f"({exc.strerror or exc}): copy {new_file} there now"
            ) from None
        where = f"{key_file} now holds it"
    else:
        where = "set IDP_KEY_ENCRYPTION_KEY to it for every server and command"
    document = {
        "rewrapped_kids": [k.kid for k in rewrapped],
        "key_file": str(key_file) if key_file is not None else None,
    }
    _print(
        document,
        args.json,
        lambda d: (
            f"re-sealed {len(d['rewrapped_kids'])} signing key(s) under the new key-encryption "
            f"key; {where}; restart every server"
        ),
    )


# -- audit --------------------------------------------------------------------------------


def _since(text: str) -> float:
    """``--since``: a duration back from now (``90s``, ``15m``, ``12h``, ``30d``) or an ISO time."""
    try:
        return time.time() - parse_duration("--since", text)
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 12h or an ISO time such as 2026-01-31T12:00:00Z, "
            f"got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the time zone (for example Z) in {text!r}")
    return moment.timestamp()


def cmd_audit_list(args: argparse.Namespace, settings: Settings) -> None:
    async def work(store: Store) -> list[dict[str, Any]]:
        return [audit_document(e) for e in await store.list_audit(args.since, args.limit)]

    def text(documents: list[dict[str, Any]]) -> str:
        rows = [
            f"{d['at']}  {d['actor']}  {d['action']}  {d['target']}  {d['outcome']}"
            + (f"  subject={d['subject']}" if d["subject"] else "")
            + (f"  count={d['count']}" if d["count"] > 1 else "")
            + (f"  {json.dumps(d['detail'], sort_keys=True)}" if d["detail"] else "")
            for d in documents
        ]
        return "\n".join(rows) if rows else "no audit entries"

    _print(_read(settings, work), args.json, text)


# -- serve --------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from idp.http.server import ServerOptions, run_server

    if (args.tls_cert is None) != (args.tls_key is None):
        raise CommandError("--tls-cert and --tls-key go together")

    async def prepare(store: Store) -> int:
        status = await store.schema_status()
        if not status.up_to_date:
            if not settings.is_sqlite:
                raise SchemaOutdated(
                    f"the database schema is out of date in {store.description}; "
                    "run `idp migrate` before `idp serve`"
                )
            await store.migrate()
        keys = await ensure_key_rings(store, settings)
        return sum(1 for k in keys if k.state in ("next", "active", "retired"))

    published = asyncio.run(_with_store(settings, prepare, schema=False))
    scheme = "https" if args.tls_cert else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"idp: store: {make_store(settings.database_url).description}")
    print(
        f"idp: keys: {published} published signing keys, private parts sealed under the "
        f"key-encryption key from {settings.key_encryption_key_source}"
    )
    print(f"idp: open {settings.issuer}/.well-known/openid-configuration")
    print(f"idp: listening on {scheme}://{host}:{args.port} with {args.workers} worker(s)")
    if not settings.issuer_is_https:
        print("idp: warning: the issuer is plain http; use https for anything but development")
    for warning in settings_warnings(settings):
        print(f"idp: warning: {warning}")
    sys.stdout.flush()
    run_server(
        ServerOptions(
            host=args.host,
            port=args.port,
            workers=args.workers,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    )


def cmd_generate_kek(args: argparse.Namespace, settings: Settings | None) -> None:
    print(new_key_encryption_key())


# -- parser -------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="idp", description="OpenID Connect / OAuth 2.0 token service")
    # Every command writes and needs the current schema unless it says otherwise.
    parser.set_defaults(writes=True, needs_schema=True)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        run=cmd_migrate, needs_schema=False
    )

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1)
    serve.add_argument("--tls-cert", metavar="FILE")
    serve.add_argument("--tls-key", metavar="FILE")
    serve.set_defaults(run=cmd_serve, needs_schema=False)

    commands.add_parser(
        "generate-kek", help="print a new key-encryption key for IDP_KEY_ENCRYPTION_KEY"
    ).set_defaults(run=cmd_generate_kek, needs_settings=False)

    clients = commands.add_parser("clients", help="manage OAuth clients").add_subparsers(
        dest="clients_command", required=True, parser_class=_Parser
    )
    create = clients.add_parser("create", help="register a client")
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
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_clients_create)
    for name, run in (("list", cmd_clients_list),):
        sub = clients.add_parser(name, help=f"{name} clients")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(run=run, writes=False)
    for name, run in (("show", cmd_clients_show), ("delete", cmd_clients_delete)):
        sub = clients.add_parser(name, help=f"{name} one client")
        sub.add_argument("client_id")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(run=run, writes=name == "delete")
    client_update = clients.add_parser("update", help="change a client's metadata")
    client_update.add_argument("client_id")
    client_update.add_argument("--name")
    client_update.add_argument("--redirect-uri", action="append", default=[])
    client_update.add_argument("--no-redirect-uris", action="store_true")
    client_update.add_argument("--post-logout-redirect-uri", action="append", default=[])
    client_update.add_argument("--no-post-logout-redirect-uris", action="store_true")
    client_update.add_argument("--grant-type", action="append", default=[])
    client_update.add_argument("--scope")
    client_update.add_argument("--audience", action="append", default=[])
    client_update.add_argument("--no-audiences", action="store_true")
    client_update.add_argument("--backchannel-logout-uri", metavar="URI")
    client_update.add_argument("--no-backchannel-logout-uri", action="store_true")
    client_update.add_argument("--json", action="store_true")
    client_update.set_defaults(run=cmd_clients_update)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True, parser_class=_Parser
    )
    user_create = users.add_parser("create", help="create a user")
    user_create.add_argument("--username", required=True)
    user_create.add_argument("--password-stdin", action="store_true")
    user_create.add_argument("--email")
    user_create.add_argument("--name")
    user_create.add_argument("--json", action="store_true")
    user_create.set_defaults(run=cmd_users_create)
    user_password = users.add_parser("set-password", help="replace a user's password")
    user_password.add_argument("username")
    user_password.add_argument("--password-stdin", action="store_true")
    user_password.add_argument("--json", action="store_true")
    user_password.set_defaults(run=cmd_users_set_password)
    user_disable = users.add_parser("disable", help="disable a user and end their sessions")
    user_disable.add_argument("username")
    user_disable.add_argument("--json", action="store_true")
    user_disable.set_defaults(run=cmd_users_disable)
    user_list = users.add_parser("list", help="list users")
    user_list.add_argument("--json", action="store_true")
    user_list.set_defaults(run=cmd_users_list, writes=False)
    for name, run in (("show", cmd_users_show), ("delete", cmd_users_delete)):
        sub = users.add_parser(name, help=f"{name} one user")
        sub.add_argument("user_id")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(run=run, writes=name == "delete")
    user_update = users.add_parser("update", help="change a user")
    user_update.add_argument("user_id")
    user_update.add_argument("--email")
    user_update.add_argument("--no-email", action="store_true")
    user_update.add_argument("--name")
    user_update.add_argument("--disable", dest="disabled", action="store_const", const=True)
    user_update.add_argument("--enable", dest="disabled", action="store_const", const=False)
    user_update.add_argument("--password-stdin", action="store_true")
    user_update.add_argument("--json", action="store_true")
    user_update.set_defaults(run=cmd_users_update)
    unlock = users.add_parser("unlock", help="forget a user's failed logins and end a lock")
    unlock.add_argument("username")
    unlock.add_argument("--json", action="store_true")
    unlock.set_defaults(run=cmd_users_unlock)

    keys = commands.add_parser("keys", help="manage signing keys").add_subparsers(
        dest="keys_command", required=True, parser_class=_Parser
    )
    key_list = keys.add_parser("list", help="list keys")
    key_list.add_argument("--json", action="store_true")
    key_list.set_defaults(run=cmd_keys_list, writes=False)
    key_status = keys.add_parser(
        "status", help="say when each ring rotates next and whether verifiers are safe"
    )
    key_status.add_argument("--json", action="store_true")
    key_status.set_defaults(run=cmd_keys_status, writes=False)
    key_import = keys.add_parser("import", help="import a PEM private key as the next key")
    key_import.add_argument("--alg", choices=["RS256", "ES256"], required=True)
    key_import.add_argument("--pem", required=True, metavar="FILE")
    key_import.add_argument("--json", action="store_true")
    key_import.set_defaults(run=cmd_keys_import)
    rotate = keys.add_parser("rotate", help="rotate signing keys now")
    rotate.add_argument("--alg", choices=["RS256", "ES256"])
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(run=cmd_keys_rotate)
    revoke = keys.add_parser("revoke", help="revoke one key at once")
    revoke.add_argument("kid")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(run=cmd_keys_revoke)
    rewrap = keys.add_parser(
        "rewrap", help="seal every signing key anew under a new key-encryption key"
    )
    rewrap.add_argument(
        "--new-key-file",
        required=True,
        metavar="FILE",
        help="a file holding the new key (from idp generate-kek), never the key itself",
    )
    rewrap.add_argument("--json", action="store_true")
    rewrap.set_defaults(run=cmd_keys_rewrap)

    audit = commands.add_parser("audit", help="read the audit trail").add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser
    )
    audit_list = audit.add_parser("list", help="list audit entries, oldest first")
    audit_list.add_argument("--since", type=_since, metavar="WHEN")
    audit_list.add_argument("--limit", type=_positive, default=1000)
    audit_list.add_argument("--json", action="store_true")
    audit_list.set_defaults(run=cmd_audit_list, writes=False)
    return parser


# Commands whose one positional is a kid or client id: base64url, so it may start with "-".
_IDENTIFIER_COMMANDS = {
    ("keys", "revoke"),
    ("clients", "show"),
    ("clients", "delete"),
    ("users", "show"),
    ("users", "delete"),
    ("users", "unlock"),
}
_FLAGS = frozenset({"--json", "-h", "--help"})
# Commands written ``COMMAND ID [--option ...]``: the identifier comes first.
_IDENTIFIER_FIRST_COMMANDS = {
    ("clients", "update"),
    ("users", "update"),
    ("users", "set-password"),
    ("users", "disable"),
}
# What an option of ours looks like; a random identifier ("-x9..." or "--Q_...") does not.
_OPTION = re.compile(r"--[a-z][a-z-]*(=.*)?|-h", re.DOTALL)


def _identifiers_as_positionals(argv: Sequence[str]) -> list[str]:
    """Put "--" before an identifier that starts with "-", which argparse takes for an option."""
    args = list(argv)
    if "--" in args:
        return args
    if tuple(args[:2]) in _IDENTIFIER_FIRST_COMMANDS:
        first = args[2] if len(args) > 2 else ""
        if first.startswith("-") and not _OPTION.fullmatch(first):
            return [*args[:2], *args[3:], "--", first]
        return args
    if tuple(args[:2]) not in _IDENTIFIER_COMMANDS:
        return args
    flags = [a for a in args[2:] if a in _FLAGS]
    values = [a for a in args[2:] if a not in _FLAGS]
    if not any(v.startswith("-") for v in values):
        return args
    return [*args[:2], *flags, "--", *values]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    from idp.logs import configure_logging

    configure_logging()
    argv = sys.argv[1:] if argv is None else list(argv)
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            sys.stderr.write(f"idp: error: argument {arg!r} is not valid UTF-8 (see --help)\n")
            return EXIT_USAGE
    args = build_parser().parse_args(_identifiers_as_positionals(argv))
    try:
        settings = (
            load_settings(os.environ, key_file_may_be_missing=True)
            if getattr(args, "needs_settings", True)
            else None
        )
    except ConfigError as exc:
        sys.stderr.write(f"idp: configuration error: {exc}\n")
        return EXIT_USAGE
    alg = getattr(args, "alg", None)
    if settings is not None and alg and alg not in settings.signing_algs:
        sys.stderr.write(
            f"idp: error: {alg} is not in IDP_SIGNING_ALGS ({', '.join(settings.signing_algs)})\n"
        )
        return EXIT_USAGE
    try:
        if settings is not None and settings.key_encryption_key_missing and args.writes:
            settings = _provide_key_file(settings, args.needs_schema)
        args.run(args, settings)
    except ConfigError as exc:
        sys.stderr.write(f"idp: configuration error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except (
        CommandError,
        StoreError,
        KeyRingError,
        KeyMaterialError,
        InvalidClientMetadata,
        InvalidUser,
    ) as exc:
        sys.stderr.write(f"idp: error: {_one_line(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


def _one_line(exc: Exception) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())
