"""``idp clients registration-token`` as a subprocess on both stores: the initial access
token it prints registers one client at a real /register, which ``idp clients list`` then
shows and ``idp clients delete`` removes like any other."""

from __future__ import annotations

import os

import httpx
import pytest

from idp.cli.main import build_parser
from idp.cli.server import _with_open_registration
from idp.config import load_settings
from tests.support.cli import Idp
from tests.support.server import start_server

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
