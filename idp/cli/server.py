"""``idp migrate``, ``idp serve`` and ``idp generate-kek``: the commands that are not admin
operations (they make the schema, run the server, or print a new key-encryption key)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from idp.cli.base import CommandError, Commands, positive, with_store
from idp.cli.next_steps import idp_program, next_steps
from idp.config import (
    Settings,
    issuer_mismatch,
    new_key_encryption_key,
    parse_scope_descriptions,
    served_issuer,
)
from idp.keyring.changes import ensure_key_rings
from idp.keyring.lifecycle import settings_warnings
from idp.logs import configure_logging, granian_log_config, json_line
from idp.store import make_store
from idp.store.base import SchemaOutdated, Store


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    applied: list[int] = asyncio.run(with_store(settings, lambda s: s.migrate(), schema=False))
    if applied:
        print(f"applied migrations {', '.join(f'{v:04d}' for v in applied)}")
    else:
        print("schema is up to date")


async def _prepare(store: Store, settings: Settings) -> int:
    """Bring the schema up to date (SQLite only) and the rings into being; how many keys are
    published."""
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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from idp.http.server import ListenError, ServerOptions, check_address_free, run_server

    configure_logging(log_format=settings.log_format)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise CommandError("--tls-cert and --tls-key go together")
    settings, mismatch = _issuer_for(settings, args)
    settings = _with_scope_descriptions(settings, args.scope_description)
    settings = _with_open_registration(settings, args.open_registration)
    published = asyncio.run(with_store(settings, lambda s: _prepare(s, settings), schema=False))
    try:
        check_address_free(args.host, args.port)
    except ListenError as exc:
        raise CommandError(str(exc)) from None
    scheme = "https" if args.tls_cert else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    say = _banner(settings.log_format)
    say("info", f"store: {make_store(settings.database_url).description}")
    say(
        "info",
        f"keys: {published} published signing keys, private parts sealed under the "
        f"key-encryption key from {settings.key_encryption_key_source}",
    )
    say("info", f"open {settings.issuer}/.well-known/openid-configuration")
    say("info", f"listening on {scheme}://{host}:{args.port} with {args.workers} worker(s)")
    if mismatch:
        say("warning", mismatch)
    if not settings.issuer_is_https:
        say("warning", "the issuer is plain http; use https for anything but development")
    for warning in settings_warnings(settings):
        say("warning", warning)
    if args.next_steps:
        say(
            "info",
            f"next steps: in another terminal, in {os.getcwd()} with the same IDP_* "
            "variables, paste these lines in order",
        )
        for line in next_steps(settings.issuer, idp_program()):
            say("step", line)
    sys.stdout.flush()
    run_server(
        ServerOptions(
            host=args.host,
            port=args.port,
            workers=args.workers,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            log_config=granian_log_config(settings.log_format),
        )
    )


def _banner(log_format: str) -> Callable[[str, str], None]:
    """Print a start-up line: ``idp: ...`` text (a step indented, to paste), or one JSON
    object (event ``startup``, or ``next_step``)."""

    def say(level: str, text: str) -> None:
        if log_format == "json":
            event = "next_step" if level == "step" else "startup"
            print(json_line("info" if level == "step" else level, event, message=text))
        elif level == "step":
            print(f"  {text}")
        else:
            print(f"idp: warning: {text}" if level == "warning" else f"idp: {text}")

    return say


def _issuer_for(settings: Settings, args: argparse.Namespace) -> tuple[Settings, str | None]:
    """The settings to serve with, and a warning when IDP_ISSUER cannot reach this server.

    Without IDP_ISSUER the issuer is the address served; it is exported so that every
    worker, which builds its app from the environment, advertises the same one.
    """
    if settings.issuer_configured:
        return settings, issuer_mismatch(settings.issuer, args.host, args.port)
    issuer = served_issuer(args.host, args.port, tls=args.tls_cert is not None)
    os.environ["IDP_ISSUER"] = issuer
    return replace(settings, issuer=issuer), None


def scope_description(text: str) -> tuple[str, str]:
    """``--scope-description``: ``scope=words`` (the words may be in double quotes)."""
    scope, equals, words = text.partition("=")
    words = words.strip()
    if len(words) >= 2 and words[0] == words[-1] == '"':
        words = words[1:-1]
    if not equals or not scope.strip() or not words.strip():
        raise argparse.ArgumentTypeError(f'expected scope="words", got {text!r}')
    return scope.strip(), words.strip()


def _with_scope_descriptions(settings: Settings, given: Sequence[tuple[str, str]]) -> Settings:
    """The settings with the ``--scope-description`` words over IDP_SCOPE_DESCRIPTIONS.

    They are exported as IDP_SCOPE_DESCRIPTIONS so that every worker, which builds its app
    from the environment, shows the same words.
    """
    if not given:
        return settings
    merged = {**dict(settings.scope_descriptions), **dict(given)}
    encoded = json.dumps(merged, ensure_ascii=False)
    described = parse_scope_descriptions(encoded)
    os.environ["IDP_SCOPE_DESCRIPTIONS"] = encoded
    return replace(settings, scope_descriptions=described)


def _with_open_registration(settings: Settings, given: bool) -> Settings:
    """The settings with ``--open-registration`` over IDP_OPEN_REGISTRATION, exported so that
    every worker, which builds its app from the environment, accepts the same clients."""
    if not given:
        return settings
    os.environ["IDP_OPEN_REGISTRATION"] = "1"
    return replace(settings, open_registration=True)


def cmd_generate_kek(args: argparse.Namespace, settings: Settings | None) -> None:
    print(new_key_encryption_key())


def port(text: str) -> int:
    """``--port``: 1 to 65535."""
    value = positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def add_commands(commands: Commands) -> None:
    """``idp migrate``, ``idp serve``, ``idp generate-kek``."""
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        run=cmd_migrate, needs_schema=False
    )
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 or :: for every interface (default: %(default)s)",
    )
    serve.add_argument(
        "--port", type=port, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers", type=positive, default=1, help="worker processes (default: %(default)s)"
    )
    serve.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate chain: serve HTTPS (with --tls-key)"
    )
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--next-steps",
        action="store_true",
        help="end the banner with the commands that make a first client and user, and a "
        "sign-in to try in a browser (scripts/serve passes it)",
    )
    serve.add_argument(
        "--scope-description",
        type=scope_description,
        action="append",
        default=[],
        metavar='SCOPE="WORDS"',
        help="what the consent page says a scope lets the app do, such as "
        'orders:read="see your orders" (repeatable; over IDP_SCOPE_DESCRIPTIONS)',
    )
    serve.add_argument(
        "--open-registration",
        action="store_true",
        help="let public native apps (loopback or private-scheme redirect URIs, no secret) "
        "register at /register without an initial access token (IDP_OPEN_REGISTRATION=1)",
    )
    serve.set_defaults(run=cmd_serve, needs_schema=False)
    commands.add_parser(
        "generate-kek", help="print a new key-encryption key for IDP_KEY_ENCRYPTION_KEY"
    ).set_defaults(run=cmd_generate_kek, needs_settings=False)
