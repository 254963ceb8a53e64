"""``idp clients registration-token`` as a subprocess on both stores: the initial access
token it prints registers one client at a real /register, which ``idp clients list`` then
shows and ``idp clients delete`` removes like any other. ``idp clients registration-tokens``
lists the tokens (never the token or its hash) and ``idp clients revoke-registration-token``
revokes one, so it registers no more clients."""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from idp.cli.main import build_parser
from idp.cli.server import _with_open_registration
from idp.config import load_settings
from idp.store.base import InitialAccessTokenRecord, Store
from tests.support.cli import Idp
from tests.support.server import start_server, with_store

MACHINE = {"client_name": "Reports", "grant_types": ["client_credentials"]}


def test_a_registration_token_registers_one_client(migrated: Idp, port: int) -> None:
    made = migrated("clients", "registration-token", "--single-use", "--expires-in", "1h", "--json")
    document = made.json()
    assert document["uses"] == 1 and document["expires_at"].endswith("Z")
    assert not document["id"].startswith("-")
    text = migrated("clients", "registration-token").ok().stdout
    assert "initial_access_token: " in text and "any number of registrations" in text
    server = start_server(load_settings(migrated.env), port)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            auth = {"Authorization": f"Bearer {document['initial_access_token']}"}
            answer = http.post("/register", json=MACHINE, headers=auth)
            assert answer.status_code == 201, answer.text
            client_id = answer.json()["client_id"]
            assert http.post("/register", json=MACHINE, headers=auth).status_code == 401
    finally:
        server.stop()
    listed = migrated("clients", "list", "--json").json()
    assert [c["name"] for c in listed] == [f"Reports ({client_id})"]
    migrated("clients", "delete", client_id).ok()
    assert migrated("clients", "list", "--json").json() == []
    actions = [a["action"] for a in migrated("audit", "list", "--json").json()]
    assert actions.count("client.registration_token") == 2
    assert "client.register" in actions


def stored_token(
    database_url: str, token_id: str, expires_at: float, uses_left: int | None
) -> None:
    """An initial access token put in the store directly (one the CLI cannot make: expired,
    used up, or with an id that starts with "-")."""
    record = InitialAccessTokenRecord(
        id=token_id,
        token_hash=hashlib.sha256(token_id.encode()).digest(),
        created_at=time.time() - 7200,
        expires_at=expires_at,
        uses_left=uses_left,
    )

    async def work(store: Store) -> None:
        await store.create_initial_access_token(record)

    with_store(database_url, work)


def test_registration_tokens_are_listed_and_revoked(migrated: Idp, database_url: str) -> None:
    assert migrated("clients", "registration-tokens", "--json").json() == []
    assert "no live initial access tokens" in migrated("clients", "registration-tokens").stdout
    once = migrated("clients", "registration-token", "--single-use", "--json").json()
    many = migrated("clients", "registration-token", "--uses", "3", "--expires-in", "7d", "--json")
    many_id = many.json()["id"]
    stored_token(database_url, "expired", time.time() - 60, None)
    stored_token(database_url, "used-up", time.time() + 3600, 0)
    listed = migrated("clients", "registration-tokens", "--json").json()
    assert [(t["id"], t["uses_left"]) for t in listed] == [(once["id"], 1), (many_id, 3)]
    assert listed[0]["expires_at"] == once["expires_at"]
    assert all(set(t) == {"id", "created_at", "expires_at", "uses_left"} for t in listed)
    assert all(t["created_at"].endswith("Z") for t in listed)
    every = migrated("clients", "registration-tokens", "--all", "--json").json()
    assert [t["id"] for t in every] == ["expired", "used-up", once["id"], many_id]
    assert [t["uses_left"] for t in every[:2]] == [None, 0]

    lines = migrated("clients", "registration-tokens", "--all").ok().stdout.splitlines()
    assert lines[0].split("  ")[0] == "ID" and lines[0].endswith("USES LEFT")
    assert len(lines) == 5 and lines[1].startswith("expired ") and lines[1].endswith("any")
    for line, token in zip(lines[1:], every, strict=True):
        assert line.index(token["created_at"]) == lines[0].index("CREATED")
        assert line.index(token["expires_at"]) == lines[0].index("EXPIRES")
    assert once["initial_access_token"] not in "\n".join(lines)

    revoked = migrated("clients", "revoke-registration-token", many_id, "--json").json()
    assert revoked == {"id": many_id, "revoked": True}
    listed = migrated("clients", "registration-tokens", "--json").json()
    assert [t["id"] for t in listed] == [once["id"]]
    again = migrated("clients", "revoke-registration-token", many_id)
    again.fails(1, "no initial access token", many_id)
    migrated("clients", "revoke-registration-token").fails(2, "ID")
    # An id that starts with "-" is an id, not an option.
    stored_token(database_url, "-dash", time.time() + 3600, 2)
    text = migrated("clients", "revoke-registration-token", "-dash").ok().stdout
    assert text.startswith("revoked initial access token -dash")
    rows = migrated("audit", "list", "--action", "client.registration_token.revoke", "--json")
    assert [(r["target"], r["actor"].startswith("cli:")) for r in rows.json()] == [
        (many_id, True),
        ("-dash", True),
    ]


def test_a_revoked_token_registers_no_client(migrated: Idp, port: int) -> None:
    made = migrated("clients", "registration-token", "--uses", "5", "--json").json()
    migrated("clients", "revoke-registration-token", made["id"]).ok()
    server = start_server(load_settings(migrated.env), port)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            auth = {"Authorization": f"Bearer {made['initial_access_token']}"}
            answer = http.post("/register", json=MACHINE, headers=auth)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "invalid_token"
    finally:
        server.stop()
    assert migrated("clients", "list", "--json").json() == []


def test_registration_token_options_are_checked(migrated: Idp) -> None:
    migrated("clients", "registration-token", "--uses", "0").fails(2, "positive")
    migrated("clients", "registration-token", "--expires-in", "soon").fails(2, "--expires-in")
    migrated("clients", "registration-token", "--expires-in", "400d").fails(1, "365")
    both = migrated("clients", "registration-token", "--uses", "2", "--single-use")
    both.fails(2, "not allowed")


def test_serve_open_registration_exports_the_setting(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``idp serve --open-registration`` turns the setting on for every worker it starts."""
    monkeypatch.delenv("IDP_OPEN_REGISTRATION", raising=False)
    settings = load_settings(env)
    assert not settings.open_registration
    assert not build_parser().parse_args(["serve"]).open_registration
    args = build_parser().parse_args(["serve", "--open-registration"])
    assert _with_open_registration(settings, args.open_registration).open_registration
    exported = os.environ["IDP_OPEN_REGISTRATION"]
    assert load_settings({**env, "IDP_OPEN_REGISTRATION": exported}).open_registration
