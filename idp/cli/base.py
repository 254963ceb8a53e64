"""What every ``idp`` command shares: its errors, its output, and running an operation.

A command runs one :mod:`idp.admin` operation on the store as ``cli:<login name>``, after
checking the schema and, for a command that writes, that the key-encryption key opens every
key in the ring. It prints the operation's document as JSON (``--json``) or as text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, NoReturn, TypeAlias, TypeVar

from idp.admin.context import AdminContext
from idp.clock import system_clock
from idp.config import Settings
from idp.keyring.kek import check_store, provide_key_file
from idp.keyring.ring import KeyRingService
from idp.sso.backchannel import BackchannelNotifier
from idp.store import make_store
from idp.store.base import SchemaOutdated, SchemaStatus, Store

EXIT_FAILURE = 1
EXIT_USAGE = 2

T = TypeVar("T")
R = TypeVar("R")
Document = dict[str, Any]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The subcommands of a parser, to which each command group adds its own."""
Column: TypeAlias = tuple[str, Callable[[Document], Any]]
"""A column of a listing: its heading and what it shows of each document."""


class CommandError(Exception):
    """A command failed for a reason the user can act on (one line, exit 1)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def group(commands: Commands, name: str, help: str) -> Commands:
    """A command group (``idp clients ...``) whose subcommand is required."""
    return commands.add_parser(name, help=help).add_subparsers(
        dest=f"{name}_command", required=True, parser_class=Parser
    )


def finish(parser: argparse.ArgumentParser, run: Callable[..., None], **defaults: Any) -> None:
    """End a command's options with ``--json`` and name the function that runs it."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (for scripts) instead of text"
    )
    parser.set_defaults(run=run, **defaults)


def add_show_and_delete(
    commands: Commands,
    noun: str,
    identifier: str,
    show: Callable[..., None],
    delete: Callable[..., None],
    identifier_help: str,
    metavar: str | None = None,
) -> None:
    """``show ID`` (read-only) and ``delete ID`` of one ``noun``."""
    for name, command in (("show", show), ("delete", delete)):
        sub = commands.add_parser(name, help=f"{name} one {noun}")
        sub.add_argument(identifier, metavar=metavar, help=identifier_help)
        finish(sub, command, writes=name == "delete")


def positive(text: str) -> int:
    """An option's value as a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def cli_actor() -> str:
    """The audit trail's name for whoever runs the command: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def emit(document: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``document`` as one JSON document or as the command's text."""
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(text(document) + "\n")


def text_value(value: Any) -> str:
    """One member of a document as text: lists space-separated, nothing as ``-``."""
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)


def record_text(document: Document) -> str:
    """A client or user document as ``name: value`` lines."""
    lines = [f"{name}: {text_value(value)}" for name, value in document.items()]
    if "client_secret" in document:
        lines.append("(the client secret is shown only this once; store it now)")
    return "\n".join(lines)


def read_password() -> str:
    """The one line ``--password-stdin`` reads: UTF-8, without its line ending."""
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


def required_password(given: bool) -> str:
    """The password from standard input, which the command requires."""
    if not given:
        raise CommandError("a password is required: pass --password-stdin and pipe it in")
    return read_password()


async def with_store(
    settings: Settings,
    work: Callable[[Store], Awaitable[T]],
    *,
    schema: bool = True,
    writes: bool = True,
) -> T:
    """Run ``work`` on the store, after checking its schema (``schema``) and, for a command
    that ``writes``, that the key-encryption key opens every key in the ring. Only a command
    that makes the schema (no ``schema`` check) may create the SQLite file."""
    store = make_store(settings.database_url, create=not schema)
    await store.open()
    try:
        if schema:
            require_schema(await store.schema_status(), store.description)
        if writes:
            await check_store(store, settings)
        return await work(store)
    finally:
        await store.close()


def require_schema(status: SchemaStatus, database: str) -> None:
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


def provide_key(settings: Settings, needs_schema: bool) -> Settings:
    """For a writing command on a SQLite store without its key file: create the file when the
    store holds no sealed keys (ConfigError, nothing created, when it does)."""

    async def provide(store: Store) -> Settings:
        return await provide_key_file(store, settings)

    return asyncio.run(with_store(settings, provide, schema=needs_schema, writes=False))


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


def run(
    settings: Settings,
    operation: Callable[[AdminContext], Awaitable[T]],
    *,
    writes: bool = True,
    notifies: bool = False,
) -> T:
    """Run one admin operation as the CLI's actor; ``notifies`` gives it a back-channel
    notifier (for operations that may end sessions), whose deliveries it waits for."""

    async def on_store(store: Store) -> T:
        ctx = AdminContext(store, settings, actor=cli_actor())
        if not notifies:
            return await operation(ctx)
        async with _notifier(store, settings) as notifier:
            return await operation(replace(ctx, notifier=notifier))

    return asyncio.run(with_store(settings, on_store, writes=writes))


def read(settings: Settings, operation: Callable[[AdminContext], Awaitable[T]]) -> T:
    """Run a read-only operation: no file created, no key needed."""
    return run(settings, operation, writes=False)


def listing(
    operation: Callable[[AdminContext], Awaitable[Sequence[R]]],
    document: Callable[[R], Document],
    columns: Sequence[Column],
    empty: str,
) -> Callable[[argparse.Namespace, Settings], None]:
    """A ``list`` command: every record ``operation`` reads, as JSON or a table."""

    def command(args: argparse.Namespace, settings: Settings) -> None:
        print_list(args.json, read(settings, operation), document, columns, empty)

    return command


def print_list(
    as_json: bool,
    records: Sequence[R],
    document: Callable[[R], Document],
    columns: Sequence[Column],
    empty: str,
) -> None:
    """Print records as a JSON array, or a table (``empty`` when there are none)."""
    documents = [document(r) for r in records]
    emit(documents, as_json, lambda _: table(documents, columns) if documents else empty)


def table(documents: Sequence[Document], columns: Sequence[Column]) -> str:
    """Aligned columns under a heading line, two spaces apart; a cell is one line."""
    rows = [[heading for heading, _ in columns]]
    rows += [[" ".join(text_value(cell(d)).split()) for _, cell in columns] for d in documents]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
