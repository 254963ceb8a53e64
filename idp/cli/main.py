"""The ``idp`` entry point: parse the command line, load the settings, run one command.

Errors print one line on stderr and exit 1 (2 for usage and configuration errors).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from idp.admin.context import InvalidInput
from idp.cli import audit, clients, consents, keys, server, sessions, users
from idp.cli.base import EXIT_FAILURE, EXIT_USAGE, CommandError, Parser, provide_key
from idp.config import ConfigError, load_settings
from idp.keyring.lifecycle import KeyRingError
from idp.keyring.material import KeyMaterialError
from idp.logs import json_line
from idp.oauth.registration import InvalidClientMetadata
from idp.store.base import StoreError

# Commands whose one positional is a kid, client id or other random id: base64url, so it may
# start with "-".
_IDENTIFIER_COMMANDS = {
    ("keys", "revoke"),
    ("clients", "show"),
    ("clients", "delete"),
    ("clients", "revoke-registration-token"),
    ("users", "show"),
    ("users", "delete"),
    ("users", "unlock"),
    ("consents", "revoke"),
    ("sessions", "list"),
}
_FLAGS = frozenset({"--json", "-h", "--help"})
# Commands written ``COMMAND ID [--option ...]``: the identifier comes first.
_IDENTIFIER_FIRST_COMMANDS = {
    ("clients", "update"),
    ("clients", "rotate-secret"),
    ("users", "update"),
    ("users", "set-password"),
    ("users", "disable"),
    ("sessions", "end"),
}
# Options whose value is a username, user id or client id, which may start with "-".
_IDENTIFIER_OPTIONS = frozenset({"--user", "--client"})
# What an option of ours looks like; a random identifier ("-x9..." or "--Q_...") does not.
_OPTION = re.compile(r"--[a-z][a-z-]*(=.*)?|-h", re.DOTALL)
_FAILURES = (
    CommandError,
    StoreError,
    KeyRingError,
    KeyMaterialError,
    InvalidClientMetadata,
    InvalidInput,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each group adds its own commands."""
    parser = Parser(prog="idp", description="OpenID Connect / OAuth 2.0 token service")
    # Every command writes and needs the current schema unless it says otherwise.
    parser.set_defaults(writes=True, needs_schema=True)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (server, clients, users, consents, sessions, keys, audit):
        module.add_commands(commands)
    return parser


def _identifier_option_values(argv: Sequence[str]) -> list[str]:
    """Join ``--client -x9`` into ``--client=-x9``, which argparse would take for two options."""
    args: list[str] = []
    for arg in argv:
        identifier = arg.startswith("-") and arg != "--" and not _OPTION.fullmatch(arg)
        if args and args[-1] in _IDENTIFIER_OPTIONS and identifier:
            args[-1] = f"{args[-1]}={arg}"
        else:
            args.append(arg)
    return args


def _identifiers_as_positionals(argv: Sequence[str]) -> list[str]:
    """Put "--" before an identifier that starts with "-", which argparse takes for an option."""
    args = _identifier_option_values(argv)
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


def _usage_error(message: str) -> int:
    sys.stderr.write(f"idp: {message}\n")
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    from idp.logs import configure_logging

    configure_logging()
    argv = sys.argv[1:] if argv is None else list(argv)
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return _usage_error(f"error: argument {arg!r} is not valid UTF-8 (see --help)")
    args = build_parser().parse_args(_identifiers_as_positionals(argv))
    try:
        settings = (
            load_settings(os.environ, key_file_may_be_missing=True)
            if getattr(args, "needs_settings", True)
            else None
        )
    except ConfigError as exc:
        return _usage_error(f"configuration error: {exc}")
    alg = getattr(args, "alg", None)
    if settings is not None and alg and alg not in settings.signing_algs:
        algs = ", ".join(settings.signing_algs)
        return _usage_error(f"error: {alg} is not in IDP_SIGNING_ALGS ({algs})")
    try:
        if settings is not None and settings.key_encryption_key_missing and args.writes:
            settings = provide_key(settings, args.needs_schema)
        args.run(args, settings)
    except ConfigError as exc:
        return _usage_error(f"configuration error: {_one_line(exc)}")
    except _FAILURES as exc:
        if settings is not None and settings.log_format == "json" and args.command == "serve":
            sys.stderr.write(json_line("error", "error", message=_one_line(exc)) + "\n")
        else:
            sys.stderr.write(f"idp: error: {_one_line(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


def _one_line(exc: Exception) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())
