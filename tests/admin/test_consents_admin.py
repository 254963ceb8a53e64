"""Listing and revoking users' consents as an administrator, with the ``idp consents``
commands and the admin API, on both stores: a revoked consent's refresh token is refused
at /token, and unknown users, clients and consents get one clear error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.admin_api import assert_error, audit, bearer, get_token, register_admin
from tests.support.admin_sso import consent_and_tokens, consenting_app, refresh
from tests.support.cli import Idp
from tests.support.sso import World, add_user
from tests.support.tokens import assert_oauth_error


@pytest.fixture
def cli(env: dict[str, str], cwd: Path) -> Idp:
    """The command on the world's store, with the world's key-encryption key."""
    return Idp(env, cwd)


def test_cli_lists_and_revokes_a_consent(world: World, cli: Idp) -> None:
    notes = consenting_app(world)
    other = consenting_app(world, "diary")
    add_user(world.server.settings, "bob", email=None, name=None)
    tokens = consent_and_tokens(world, notes)
    consent_and_tokens(world, other)
    consent_and_tokens(world, notes, "bob")

    every = cli("consents", "list", "--json").json()
    assert [(c["username"], c["client_id"]) for c in every] == [
        ("alice", notes),
        ("alice", other),
        ("bob", notes),
    ]
    first = every[0]
    assert first["user_id"] == world.user_id and first["client_name"] == "notes"
    assert first["scope"] == "openid profile email" and first["granted_at"].endswith("Z")
    mine = cli("consents", "list", "--user", "alice", "--client", notes, "--json").json()
    assert mine == [first]
    by_id = cli("consents", "list", "--user", world.user_id, "--json").json()
    assert [c["client_id"] for c in by_id] == [notes, other]
    table = cli("consents", "list", "--client", notes).ok().stdout.splitlines()
    assert table[0].split() == ["USERNAME", "USER", "ID", "CLIENT", "ID", "CLIENT", "NAME",
                                "SCOPE", "GRANTED"]  # fmt: skip
    assert [row.split()[0] for row in table[1:]] == ["alice", "bob"]

    done = cli("consents", "revoke", "alice", notes).ok().stdout
    assert f"revoked the consent of user alice to client {notes}" in done
    assert_oauth_error(refresh(world, notes, tokens["refresh_token"]), 400, "invalid_grant")
    left = cli("consents", "list", "--json").json()
    assert [(c["username"], c["client_id"]) for c in left] == [("alice", other), ("bob", notes)]
    row = audit(world.server)[-1]
    assert (row.actor.startswith("cli"), row.action, row.target) == (True, "consent.revoke", notes)
    assert row.detail == {"user_id": world.user_id, "username": "alice"}

    cli("consents", "revoke", "alice", notes).fails(1, "user 'alice' has no consent for client")
    cli("consents", "revoke", "nobody", notes).fails(1, "no user named 'nobody'")
    cli("consents", "revoke", "alice", "no-such-client").fails(1, "no client with client_id")
    cli("consents", "list", "--user", "nobody").fails(1, "no user named 'nobody'")
    cli("consents", "list", "--client", "no-such-client").fails(1, "no client with client_id")
    assert cli("consents", "list", "--user", "bob", "--client", other).ok().stdout == (
        "no consents\n"
    )


def test_api_lists_and_revokes_a_consent(world: World) -> None:
    notes = consenting_app(world)
    tokens = consent_and_tokens(world, notes)
    admin_id, secret = register_admin(world.server)
    with httpx.Client(base_url=world.url, timeout=30) as http:
        headers = bearer(get_token(http, admin_id, secret))
        listed = http.get("/admin/consents", headers=headers)
        assert listed.status_code == 200, listed.text
        [consent] = listed.json()
        assert (consent["user_id"], consent["username"], consent["client_id"]) == (
            world.user_id, "alice", notes,
        )  # fmt: skip
        query = {"user_id": world.user_id, "client_id": notes}
        assert http.get("/admin/consents", params=query, headers=headers).json() == [consent]
        unknown = http.get("/admin/consents", params={"user_id": "nobody"}, headers=headers)
        assert_error(unknown, 404, "not_found")
        bad = http.get("/admin/consents", params={"user": "alice"}, headers=headers)
        assert_error(bad, 400, "invalid_request")

        path = f"/admin/consents/{world.user_id}/{notes}"
        assert http.delete(path, headers=headers).status_code == 204
        assert_oauth_error(refresh(world, notes, tokens["refresh_token"]), 400, "invalid_grant")
        assert http.get("/admin/consents", headers=headers).json() == []
        row = audit(world.server)[-1]
        assert (row.actor, row.action, row.target) == (f"admin:{admin_id}", "consent.revoke", notes)

        again = assert_error(http.delete(path, headers=headers), 404, "not_found")
        assert "has no consent" in again["error_description"]
        gone = http.delete(f"/admin/consents/nobody/{notes}", headers=headers)
        assert (
            "no user with id 'nobody'" in assert_error(gone, 404, "not_found")["error_description"]
        )
        no_client = http.delete(f"/admin/consents/{world.user_id}/nope", headers=headers)
        assert_error(no_client, 404, "not_found")
        assert http.delete(path).status_code == 401
    refused = audit(world.server)[-1]
    assert (refused.action, refused.outcome) == ("consent.revoke", "failure")
