"""Listing and ending users' browser sessions as an administrator, with the ``idp sessions``
commands and the admin API, on both stores: an ended session's cookie no longer signs in,
the clients that used it get a back-channel logout token, and unknown users and sessions
get one clear error."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_api import assert_error, audit, bearer, get_token, register_admin
from tests.support.admin_sso import (
    backchannel_app,
    logout_sids,
    sign_in_to,
    signed_in,
    wait_until,
)
from tests.support.backchannel import Receiver
from tests.support.cli import Idp
from tests.support.sso import World


@pytest.fixture
def cli(env: dict[str, str], cwd: Path) -> Idp:
    """The command on the world's store, allowed to post logout tokens to 127.0.0.1."""
    return Idp({**env, "IDP_ALLOW_PRIVATE_BACKCHANNEL": "1"}, cwd)


@pytest.fixture
def receiver(world: World) -> Iterator[Receiver]:
    """A back-channel logout endpoint of the app ``portal`` (client_id set by the test)."""
    started = Receiver(world.url, "").start()
    yield started
    started.stop()


def portal(world: World, receiver: Receiver) -> str:
    client_id = backchannel_app(world, receiver.url)
    receiver.client_id = client_id
    return client_id


def test_cli_lists_and_ends_sessions_with_backchannel_logout(
    world: World, cli: Idp, receiver: Receiver
) -> None:
    client_id = portal(world, receiver)
    with world.browser() as first, world.browser() as second:
        sign_in_to(first, client_id)
        sign_in_to(second, client_id)
        listed = cli("sessions", "list", "alice", "--json").json()
        assert len(listed) == 2
        newest, oldest = listed
        assert {s["clients"] == [client_id] for s in listed} == {True}
        assert newest["username"] == "alice" and newest["user_id"] == world.user_id
        assert newest["amr"] == ["pwd"] and newest["expires_at"].endswith("Z")
        cookies = {c.value for b in (first, second) for c in b.cookies.jar}
        assert not cookies & {s["sid"] for s in listed}, "a cookie value shown as a session id"
        assert cli("sessions", "list", world.user_id, "--json").json() == listed
        table = cli("sessions", "list", "alice").ok().stdout.splitlines()
        assert table[0].split()[:2] == ["SID", "STARTED"] and len(table) == 3
        assert table[1].split()[0] == newest["sid"]

        ended = cli("sessions", "end", oldest["sid"]).ok().stdout
        assert f"ended session {oldest['sid']} of user alice" in ended
        assert not signed_in(first, client_id)
        assert signed_in(second, client_id)
        wait_until(lambda: len(receiver.accepted) == 1)
        assert logout_sids(receiver) == [oldest["sid"]]
        assert receiver.accepted[0]["sub"] == world.user_id
        row = audit(world.server)[-1]
        assert (row.action, row.target, row.detail["username"]) == (
            "session.end", oldest["sid"], "alice",
        )  # fmt: skip

        cli("sessions", "end", oldest["sid"]).fails(1, "no live session with sid")
        cli("sessions", "end", "no-such-sid").fails(1, "no live session with sid")
        everything = cli("sessions", "end", "--user", "alice", "--all", "--json").json()
        assert everything == {"id": world.user_id, "username": "alice", "sessions_ended": 1}
        assert not signed_in(second, client_id)
        wait_until(lambda: len(receiver.accepted) == 2)
        assert logout_sids(receiver) == [oldest["sid"], newest["sid"]]
        row = audit(world.server)[-1]
        assert (row.action, row.target, row.detail) == (
            "session.end_all", world.user_id, {"username": "alice", "count": 1},
        )  # fmt: skip
    assert cli("sessions", "list", "alice").ok().stdout == "no live sessions\n"
    again = cli("sessions", "end", "--user", "alice", "--all").ok().stdout
    assert "ended 0 session(s) of user alice" in again
    cli("sessions", "list", "nobody").fails(1, "no user named 'nobody'")
    cli("sessions", "end", "--user", "nobody", "--all").fails(1, "no user named 'nobody'")
    cli("sessions", "end", "--user", "alice").fails(1, "--all")
    cli("sessions", "end").fails(1, "--all")
    cli("sessions", "end", "some-sid", "--user", "alice", "--all").fails(1, "not both")


def test_api_lists_and_ends_sessions_with_backchannel_logout(
    world: World, receiver: Receiver
) -> None:
    client_id = portal(world, receiver)
    admin_id, secret = register_admin(world.server)
    with (
        world.browser() as first,
        world.browser() as second,
        world.browser() as third,
        httpx.Client(base_url=world.url, timeout=30) as http,
    ):
        headers = bearer(get_token(http, admin_id, secret))
        for browser in (first, second, third):
            sign_in_to(browser, client_id)
        sessions = f"/admin/users/{world.user_id}/sessions"
        listed = http.get(sessions, headers=headers)
        assert listed.status_code == 200, listed.text
        newest, middle, oldest = listed.json()
        assert newest["clients"] == [client_id]

        assert http.delete(f"/admin/sessions/{oldest['sid']}", headers=headers).status_code == 204
        assert not signed_in(first, client_id)
        assert signed_in(second, client_id) and signed_in(third, client_id)
        wait_until(lambda: len(receiver.accepted) == 1)
        assert logout_sids(receiver) == [oldest["sid"]]
        row = audit(world.server)[-1]
        assert (row.actor, row.action, row.target) == (
            f"admin:{admin_id}", "session.end", oldest["sid"],
        )  # fmt: skip
        left = [s["sid"] for s in http.get(sessions, headers=headers).json()]
        assert left == [newest["sid"], middle["sid"]]

        again = http.delete(f"/admin/sessions/{oldest['sid']}", headers=headers)
        assert "no live session" in assert_error(again, 404, "not_found")["error_description"]
        refused = audit(world.server)[-1]
        assert (refused.action, refused.target, refused.outcome) == (
            "session.end", oldest["sid"], "failure",
        )  # fmt: skip

        ended = http.delete(sessions, headers=headers)
        assert ended.status_code == 200, ended.text
        assert ended.json() == {"id": world.user_id, "username": "alice", "sessions_ended": 2}
        assert not signed_in(second, client_id) and not signed_in(third, client_id)
        wait_until(lambda: len(receiver.accepted) == 3)
        assert sorted(logout_sids(receiver)[1:]) == sorted([newest["sid"], middle["sid"]])
        assert http.get(sessions, headers=headers).json() == []

        for path in ("/admin/users/nobody/sessions",):
            assert_error(http.get(path, headers=headers), 404, "not_found")
            assert_error(http.delete(path, headers=headers), 404, "not_found")
        assert http.get(sessions).status_code == 401


def test_ids_that_start_with_a_dash_are_taken_as_ids() -> None:
    from idp.cli.main import _identifiers_as_positionals, build_parser

    def parse(*argv: str) -> argparse.Namespace:
        return build_parser().parse_args(_identifiers_as_positionals(argv))

    assert parse("sessions", "end", "-Xy_9", "--json").sid == "-Xy_9"
    assert parse("sessions", "list", "-u1", "--json").user == "-u1"
    revoke = parse("consents", "revoke", "-u1", "-c1", "--json")
    assert (revoke.user, revoke.client_id, revoke.json) == ("-u1", "-c1", True)
    every = parse("sessions", "end", "--user", "alice", "--all")
    assert (every.sid, every.user, every.all) == (None, "alice", True)
    dashed = parse("sessions", "end", "--all", "--user", "-bO4_x")
    assert (dashed.user, dashed.all) == ("-bO4_x", True)
    listing = parse("consents", "list", "--user", "-u1", "--client", "-bO412vqUxN7Z", "--json")
    assert (listing.user, listing.client, listing.json) == ("-u1", "-bO412vqUxN7Z", True)
    with pytest.raises(SystemExit):
        parse("consents", "list", "--client", "--json")


def test_minted_identifiers_never_start_with_a_dash() -> None:
    from idp.identifiers import new_identifier

    drawn = [new_identifier(2) for _ in range(4000)]
    assert not any(identifier.startswith("-") for identifier in drawn)
    assert len({identifier[0] for identifier in drawn}) == 63
