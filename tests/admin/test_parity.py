"""Every management command of the CLI has a twin in the admin API (the same idp.admin
operation behind both), and every API operation is one the table routes and documents.

Excepted, as not admin operations over the network: ``migrate`` (makes the schema),
``serve`` (runs the server), ``generate-kek`` (prints a new key, touches no store) and
``keys rewrap`` (reads the new key-encryption key from a file on the machine and replaces
the key file there; every process must restart with it).
"""

from __future__ import annotations

import argparse

from idp.cli.main import build_parser
from idp.http.admin.operations import OPERATIONS

NOT_OVER_THE_NETWORK = {
    ("migrate",),
    ("serve",),
    ("generate-kek",),
    ("keys", "rewrap"),
}

# CLI command -> the admin API action calling the same idp.admin function.
TWINS = {
    ("clients", "create"): "client.create",
    ("clients", "list"): "client.list",
    ("clients", "show"): "client.show",
    ("clients", "update"): "client.update",
    ("clients", "delete"): "client.delete",
    ("clients", "rotate-secret"): "client.rotate_secret",
    ("users", "create"): "user.create",
    ("users", "list"): "user.list",
    ("users", "show"): "user.show",
    ("users", "update"): "user.update",
    ("users", "set-password"): "user.update",
    ("users", "disable"): "user.disable",
    ("users", "unlock"): "user.unlock",
    ("users", "delete"): "user.delete",
    ("users", "mfa"): "user.mfa",
    ("users", "mfa-reset"): "user.mfa_reset",
    ("users", "require-mfa"): "user.require_mfa",
    ("keys", "list"): "key.list",
    ("keys", "status"): "key.status",
    ("keys", "import"): "key.import",
    ("keys", "rotate"): "key.rotate",
    ("keys", "revoke"): "key.revoke",
    ("audit", "list"): "audit.list",
}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_commands() -> set[tuple[str, ...]]:
    """Every command the ``idp`` parser accepts, as (group, command) or (command,)."""
    found: set[tuple[str, ...]] = set()
    for name, sub in _subcommands(build_parser()).items():
        inner = _subcommands(sub)
        found |= {(name, command) for command in inner} if inner else {(name,)}
    return found


def test_every_cli_management_command_has_an_api_twin() -> None:
    commands = cli_commands()
    assert commands >= NOT_OVER_THE_NETWORK
    management = commands - NOT_OVER_THE_NETWORK
    assert management == set(TWINS), "a command without a twin, or a twin without a command"
    actions = {operation.action for operation in OPERATIONS}
    missing = {command: action for command, action in TWINS.items() if action not in actions}
    assert not missing


def test_every_api_operation_is_a_cli_twin_or_the_description() -> None:
    actions = {operation.action for operation in OPERATIONS}
    assert actions - set(TWINS.values()) == {"admin.openapi"}
    assert len(actions) == len(OPERATIONS), "an action named twice"
    for operation in OPERATIONS:
        assert operation.summary, operation.action
