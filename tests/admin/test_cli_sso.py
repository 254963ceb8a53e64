"""The sign-on side of the admin command, as a subprocess on both stores."""

from __future__ import annotations

import time

import pytest

from idp.config import load_settings
from idp.sso.sessions import start_session
from idp.store.base import Store
from tests.support.cli import Idp, Result
from tests.support.server import with_store


def test_clients_create_with_consent_backchannel_and_refresh_grant(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "portal", "--public",
        "--redirect-uri", "https://portal.example/cb",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--require-consent", "--backchannel-logout-uri", "https://portal.example/bc",
        "--json",
    ).json()  # fmt: skip
    assert created["require_consent"] is True
    assert created["backchannel_logout_uri"] == "https://portal.example/bc"
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    shown = migrated("clients", "show", created["client_id"], "--json").json()
    assert shown["require_consent"] is True
    assert shown["backchannel_logout_uri"] == "https://portal.example/bc"
    plain = migrated(
        "clients", "create", "--name", "plain", "--public",
        "--redirect-uri", "http://127.0.0.1:9/cb", "--json",
    ).json()  # fmt: skip
    assert plain["require_consent"] is False and plain["backchannel_logout_uri"] is None
    # A receiver on this machine only with private receivers allowed (development).
    local = (
        "clients", "create", "--name", "local", "--public",
        "--redirect-uri", "http://127.0.0.1:9/cb",
        "--backchannel-logout-uri", "http://127.0.0.1:9/bc", "--json",
    )  # fmt: skip
    migrated(*local).fails(1, "loopback, private, link-local")
    loopback = migrated(*local, IDP_ALLOW_PRIVATE_BACKCHANNEL="1").json()
    assert loopback["backchannel_logout_uri"] == "http://127.0.0.1:9/bc"


@pytest.mark.parametrize(
    "uri", ["http://portal.example/bc", "https://portal.example/bc#x", "ftp://x/bc", "bc"]
)
def test_bad_backchannel_logout_uri_is_refused(migrated: Idp, uri: str) -> None:
    migrated(
        "clients", "create", "--name", "portal", "--public",
        "--redirect-uri", "https://portal.example/cb", "--backchannel-logout-uri", uri,
    ).fails(1, "back-channel logout URI")  # fmt: skip
    assert migrated("clients", "list", "--json").json() == []


def create_with_backchannel(idp: Idp, uri: str, **env: str) -> Result:
    return idp(
        "clients", "create", "--name", "portal", "--public",
        "--redirect-uri", "https://portal.example/cb", "--backchannel-logout-uri", uri,
        "--json", **env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "uri",
    [
        "https://10.0.0.5/bc",
        "https://192.168.1.1/bc",
        "https://169.254.169.254/latest",
        "https://127.0.0.1/bc",
        "https://localhost/bc",
        "https://rp.localhost/bc",
        "https://[::1]/bc",
        "https://[fe80::1]/bc",
        "https://[::ffff:10.0.0.5]/bc",
        "https://0.0.0.0/bc",
    ],
)
def test_private_backchannel_hosts_are_refused_unless_allowed(migrated: Idp, uri: str) -> None:
    create_with_backchannel(migrated, uri).fails(1, "loopback, private, link-local")
    allowed = create_with_backchannel(migrated, uri, IDP_ALLOW_PRIVATE_BACKCHANNEL="1").json()
    assert allowed["backchannel_logout_uri"] == uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://0x7f.1/bc",
        "https://0x7f000001/bc",
        "https://0177.0.0.1/bc",
        "https://2130706433/bc",
        "https://127.1/bc",
        "https://portal.0x7f/bc",
    ],
)
def test_raw_ip_in_hex_octal_or_integer_is_refused_even_when_private_is_allowed(
    migrated: Idp, uri: str
) -> None:
    for env in ({}, {"IDP_ALLOW_PRIVATE_BACKCHANNEL": "1"}):
        create_with_backchannel(migrated, uri, **env).fails(1, "non-standard form")
    assert migrated("clients", "list", "--json").json() == []


@pytest.mark.parametrize(
    "uri", ["https://\u24dbocalhost/bc", "https://a..b/bc", "https://a%2eb/bc"]
)
def test_backchannel_host_names_must_be_plain_ascii(migrated: Idp, uri: str) -> None:
    create_with_backchannel(migrated, uri, IDP_ALLOW_PRIVATE_BACKCHANNEL="1").fails(1, "ASCII")


def test_https_issuer_needs_https_backchannel_even_when_private_is_allowed(migrated: Idp) -> None:
    https = {"IDP_ISSUER": "https://id.example", "IDP_ALLOW_PRIVATE_BACKCHANNEL": "1"}
    create_with_backchannel(migrated, "http://127.0.0.1:9/bc", **https).fails(1, "must use https")
    assert create_with_backchannel(migrated, "https://127.0.0.1:9/bc", **https).json()


def test_clients_update_sets_checks_and_removes_the_backchannel_uri(migrated: Idp) -> None:
    client = create_with_backchannel(migrated, "https://portal.example/bc").json()
    update = ("clients", "update", client["client_id"])
    migrated(*update, "--backchannel-logout-uri", "https://10.0.0.5/bc").fails(1, "private")
    migrated(*update, "--backchannel-logout-uri", "https://0x7f.1/bc").fails(1, "non-standard")
    moved = migrated(*update, "--backchannel-logout-uri", "https://rp.example/bc", "--json")
    assert moved.json()["backchannel_logout_uri"] == "https://rp.example/bc"
    removed = migrated(*update, "--no-backchannel-logout-uri", "--json").json()
    assert removed["backchannel_logout_uri"] is None


def test_users_set_password_and_disable(migrated: Idp, database_url: str) -> None:
    migrated(
        "users", "create", "--username", "carol", "--password-stdin", stdin="password one\n"
    ).ok()
    migrated("users", "set-password", "carol", "--password-stdin", stdin="password two\n").ok()
    migrated("users", "set-password", "carol").fails(1, "--password-stdin")
    migrated("users", "set-password", "nobody", "--password-stdin", stdin="password x\n").fails(
        1, "nobody"
    )

    async def sessions(store: Store) -> list[bytes]:
        user = await store.get_user_by_username("carol")
        assert user is not None
        settings = load_settings(migrated.env)
        ids = []
        for _ in range(2):
            ids.append((await start_session(store, settings, time.time, user.id)).record.id)
        return ids

    session_ids = with_store(database_url, sessions)
    disabled = migrated("users", "disable", "carol", "--json").json()
    assert disabled["disabled"] is True and disabled["sessions_ended"] == 2
    listed = migrated("users", "list", "--json").json()
    assert listed[0]["disabled"] is True

    async def ended(store: Store) -> list[bool]:
        found = [await store.get_session(i) for i in session_ids]
        return [s is not None and s.ended_at is not None for s in found]

    assert with_store(database_url, ended) == [True, True]
    again = migrated("users", "disable", "carol", "--json").json()
    assert again["sessions_ended"] == 0
    migrated("users", "disable", "nobody").fails(1, "nobody")
