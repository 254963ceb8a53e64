"""The ``idp`` command as an operator meets it: its help, the defaults it chooses, the
identifiers it takes, and its listings. Run for real as ``python -m idp`` on both stores."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import httpx

from idp.cli.main import build_parser
from tests.support.cli import Idp
from tests.support.processes import serving
from tests.support.sso import AuthorizeParams, sign_in

# -- help -----------------------------------------------------------------------------------


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser in the command tree with its command words (``("clients", "create")``)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"idp {' '.join((*path, name))} has no help"
                yield from commands(sub, (*path, name))


def test_every_option_of_every_command_has_help_with_its_values_and_default() -> None:
    checked = 0
    for path, parser in commands(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            where = f"idp {' '.join(path)} {name}"
            assert action.help and action.help.strip(), f"{where} has no help"
            for choice in action.choices or ():
                assert str(choice) in text, f"{where}: {choice} not in --help"
            if action.default not in (None, False, [], "", argparse.SUPPRESS):
                assert "default" in action.help, f"{where}: its default is not in --help"
            checked += 1
    assert checked > 50


def test_help_lists_the_grant_types_and_their_default(idp: Idp) -> None:
    text = idp("clients", "create", "--help").ok().stdout
    assert "client_credentials, authorization_code, refresh_token" in " ".join(text.split())
    assert "default: authorization_code and refresh_token with a redirect URI" in " ".join(
        text.split()
    )


# -- grants a client gets by default --------------------------------------------------------


def test_a_client_with_a_redirect_uri_signs_people_in_by_default(
    migrated: Idp, database_url: str, port: int
) -> None:
    """Without --grant-type, a redirect URI means authorization_code and refresh_token, and
    the client completes the code flow with PKCE and refreshes."""
    redirect = "http://127.0.0.1:9999/callback"
    web = migrated("clients", "create", "--name", "web", "--redirect-uri", redirect, "--json")
    client = web.json()
    assert client["grant_types"] == ["authorization_code", "refresh_token"]
    machine = migrated("clients", "create", "--name", "machine", "--json").json()
    assert machine["grant_types"] == ["client_credentials"]
    public = migrated(
        "clients", "create", "--name", "spa", "--public", "--redirect-uri", redirect, "--json"
    ).json()
    assert public["grant_types"] == ["authorization_code", "refresh_token"]
    told = migrated(
        "clients",
        "create",
        "--name",
        "told",
        "--redirect-uri",
        redirect,
        "--grant-type",
        "authorization_code",
        "--json",
    ).json()
    assert told["grant_types"] == ["authorization_code"]

    password = "correct horse battery"
    migrated("users", "create", "--username", "alice", "--password-stdin", stdin=password).ok()
    with serving(migrated.env, migrated.cwd, port) as server:
        request = AuthorizeParams(client_id=client["client_id"], redirect_uri=redirect)
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            answer = sign_in(browser, request, "alice", password)
        auth = (client["client_id"], client["client_secret"])
        tokens = httpx.post(
            f"{server.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": redirect,
                "code_verifier": request.verifier,
            },
            auth=auth,
            timeout=30,
        )
        assert tokens.status_code == 200, tokens.text
        refreshed = httpx.post(
            f"{server.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
            auth=auth,
            timeout=30,
        )
        assert refreshed.status_code == 200, refreshed.text


def test_an_unknown_grant_type_is_a_usage_error(migrated: Idp) -> None:
    result = migrated("clients", "create", "--name", "x", "--grant-type", "password")
    result.fails(2, "--grant-type", "invalid choice")


# -- users by username or id ----------------------------------------------------------------


def test_user_commands_take_a_username_or_an_id(migrated: Idp) -> None:
    password = "correct horse battery"
    made = migrated(
        "users", "create", "--username", "Alice", "--password-stdin", "--json", stdin=password
    ).json()
    user_id = made["id"]
    for given in ("Alice", "alice", user_id):
        assert migrated("users", "show", given, "--json").json()["id"] == user_id
    updated = migrated("users", "update", "alice", "--name", "Alice A.", "--json").json()
    assert (updated["id"], updated["name"]) == (user_id, "Alice A.")
    changed = migrated(
        "users", "set-password", user_id, "--password-stdin", "--json", stdin=password + "!"
    )
    assert changed.json()["id"] == user_id
    assert migrated("users", "unlock", user_id, "--json").json()["id"] == user_id
    assert migrated("users", "disable", user_id, "--json").json()["id"] == user_id
    migrated("users", "show", "nobody").fails(1, "no user named 'nobody' or with that id")
    deleted = migrated("users", "delete", "ALICE", "--json").json()
    assert deleted == {"id": user_id, "deleted": True}
    migrated("users", "show", user_id).fails(1, f"no user named '{user_id}'")


# -- listings -------------------------------------------------------------------------------


def assert_aligned(text: str, headings: list[str]) -> list[dict[str, str]]:
    """The heading line names ``headings``; every row's cells start under their heading.
    Returns the rows as heading-to-cell mappings."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0]
    assert re.split(r"\s{2,}", header) == headings, header
    starts: list[int] = []
    for heading in headings:
        starts.append(header.index(heading, starts[-1] + 1 if starts else 0))
    rows = []
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  " and line[start] != " ", (line, start)
        ends = [*starts[1:], None]
        rows.append({h: line[s:e].strip() for h, s, e in zip(headings, starts, ends, strict=True)})
    return rows


def test_lists_are_aligned_tables_and_json_is_unchanged(migrated: Idp) -> None:
    short = migrated("clients", "create", "--name", "m", "--json").json()
    migrated(
        "clients",
        "create",
        "--name",
        "a much longer client name",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
        "--json",
    ).ok()
    migrated("users", "create", "--username", "bo", "--password-stdin", stdin="password one").ok()
    migrated(
        "users",
        "create",
        "--username",
        "christabel",
        "--email",
        "c@example.com",
        "--password-stdin",
        stdin="password two",
    ).ok()

    clients = assert_aligned(
        migrated("clients", "list").ok().stdout,
        ["CLIENT ID", "NAME", "GRANT TYPES", "AUTH METHOD", "CREATED"],
    )
    assert {c["NAME"] for c in clients} == {"m", "a much longer client name"}
    assert {c["GRANT TYPES"] for c in clients} == {
        "client_credentials",
        "authorization_code,refresh_token",
    }
    users = assert_aligned(
        migrated("users", "list").ok().stdout,
        ["ID", "USERNAME", "EMAIL", "NAME", "DISABLED", "CREATED"],
    )
    assert sorted((u["USERNAME"], u["EMAIL"]) for u in users) == [
        ("bo", "-"),
        ("christabel", "c@example.com"),
    ]
    migrated("keys", "rotate").ok()
    keys = assert_aligned(
        migrated("keys", "list").ok().stdout,
        ["KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED", "REVOKED", "NEXT"],
    )
    assert {k["STATE"] for k in keys} == {"active", "next"}
    audit = assert_aligned(
        migrated("audit", "list").ok().stdout,
        ["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAILS"],
    )
    assert {"client.create", "user.create"} <= {a["ACTION"] for a in audit}

    listed = migrated("clients", "list", "--json").json()
    expected = {k: v for k, v in short.items() if k != "client_secret"}
    assert expected in listed and len(listed) == 2
    assert set(migrated("users", "list", "--json").json()[0]) == {
        "id",
        "username",
        "email",
        "name",
        "disabled",
        "created_at",
    }
