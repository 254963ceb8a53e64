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

# CLI command -> the admin API action(s) calling the same idp.admin function(s).
TWINS: dict[tuple[str, ...], str | tuple[str, ...]] = {
    ("clients", "create"): "client.create",
    ("clients", "list"): "client.list",
    ("clients", "show"): "client.show",
    ("clients", "update"): "client.update",
    ("clients", "delete"): "client.delete",
    ("clients", "rotate-secret"): "client.rotate_secret",
    ("clients", "registration-token"): "client.registration_token",
    ("clients", "registration-tokens"): "client.registration_token.list",
    ("clients", "revoke-registration-token"): "client.registration_token.revoke",
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
    ("consents", "list"): "consent.list",
    ("consents", "revoke"): "consent.revoke",
    ("sessions", "list"): "session.list",
    # ``idp sessions end SID`` and ``idp sessions end --user U --all``.
    ("sessions", "end"): ("session.end", "session.end_all"),
}


def twin_actions() -> set[str]:
    """Every admin API action some command has as its twin."""
    found: set[str] = set()
    for action in TWINS.values():
        found |= {action} if isinstance(action, str) else set(action)
    return found


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
    assert not twin_actions() - actions


def test_every_api_operation_is_a_cli_twin_or_the_description() -> None:
    actions = {operation.action for operation in OPERATIONS}
    assert actions - twin_actions() == {"admin.openapi"}
    assert len(actions) == len(OPERATIONS), "an action named twice"
    for operation in OPERATIONS:
        assert operation.summary, operation.action
