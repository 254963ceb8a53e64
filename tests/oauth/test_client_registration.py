"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592) over real
HTTP, on both stores: initial access tokens (made, listed and revoked through the admin API),
open registration of native apps, metadata errors, the registration access token, and the
per-address rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from idp.admin.context import AdminContext
from idp.admin.registration import create_initial_access_token
from idp.config import Settings
from tests.support.admin_api import assert_error, audit, bearer, get_token, register_admin
from tests.support.server import LiveServer, basic, start_server, with_store

MACHINE = {
    "client_name": "Billing",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "read",
    "software_id": "ignored-unknown-member",
}
NATIVE = {
    "client_name": "Desktop app",
    "redirect_uris": ["http://127.0.0.1:4567/callback"],
    "token_endpoint_auth_method": "none",
}


def serve(settings: Settings, port: int) -> Iterator[LiveServer]:
    running = start_server(settings, port)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server(settings: Settings, port: int) -> Iterator[LiveServer]:
    """Registration closed: an initial access token is needed (the default)."""
    yield from serve(settings, port)


@pytest.fixture
def open_server(settings: Settings, port: int) -> Iterator[LiveServer]:
    """IDP_OPEN_REGISTRATION=1."""
    yield from serve(replace(settings, open_registration=True), port)


@pytest.fixture
def limited_server(settings: Settings, port: int) -> Iterator[LiveServer]:
    """Three registration requests per address per hour."""
    yield from serve(replace(settings, registration_rate_limit=3), port)


def client_for(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def initial_token(server: LiveServer, uses: int | None = None) -> str:
    """An initial access token made in the server's store, as ``idp clients
    registration-token`` makes one."""

    async def work(store: Any) -> str:
        ctx = AdminContext(store, server.settings, actor="cli:tester")
        _, token = await create_initial_access_token(ctx, 3600, uses)
        return token

    token: str = with_store(server.settings.database_url, work)
    return token


def register(
    http: httpx.Client, metadata: dict[str, Any], token: str | None = None
) -> httpx.Response:
    return http.post("/register", json=metadata, headers=bearer(token) if token else {})


def registered(http: httpx.Client, metadata: dict[str, Any], token: str | None) -> dict[str, Any]:
    answer = register(http, metadata, token)
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    document: dict[str, Any] = answer.json()
    return document


def assert_oauth_error(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    assert body["error"] == error and body["error_description"]
    return body


def test_registration_with_an_initial_access_token(server: LiveServer) -> None:
    token = initial_token(server, uses=1)
    with client_for(server) as http:
        assert http.get("/.well-known/openid-configuration").json()["registration_endpoint"] == (
            f"{server.url}/register"
        )
        document = registered(http, MACHINE, token)
        client_id = document["client_id"]
        assert document["client_name"] == "Billing"
        assert document["grant_types"] == ["client_credentials"]
        assert document["response_types"] == []
        assert document["scope"] == "read"
        assert document["client_secret_expires_at"] == 0
        assert isinstance(document["client_id_issued_at"], int)
        assert document["registration_client_uri"] == f"{server.url}/register/{client_id}"
        assert document["registration_access_token"]
        assert "software_id" not in document
        # The registered client is an ordinary client: it gets tokens at once.
        answer = http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, document["client_secret"]),
        )
        assert answer.status_code == 200, answer.text
        # A single-use token registers one client only.
        again = register(http, {**MACHINE, "client_name": "Second"}, token)
        assert_oauth_error(again, 401, "invalid_token")
        assert again.headers["www-authenticate"].startswith("Bearer")
    rows = [r for r in audit(server) if r.action == "client.register"]
    assert [(r.actor, r.target) for r in rows] == [("registration:127.0.0.1", client_id)]
    clients = with_store(server.settings.database_url, lambda s: s.list_clients())
    assert [c.name for c in clients] == [f"Billing ({client_id})"]
    assert clients[0].require_consent


def test_closed_registration_refuses_a_request_without_a_valid_token(server: LiveServer) -> None:
    with client_for(server) as http:
        answer = register(http, NATIVE)
        assert_oauth_error(answer, 401, "invalid_token")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert_oauth_error(register(http, NATIVE, "not-a-token"), 401, "invalid_token")
        basic_auth = http.post("/register", json=NATIVE, headers=basic("a", "b"))
        assert_oauth_error(basic_auth, 401, "invalid_token")
    assert with_store(server.settings.database_url, lambda s: s.list_clients()) == []


def test_open_registration_takes_native_public_clients_only(open_server: LiveServer) -> None:
    with client_for(open_server) as http:
        loopback = registered(http, NATIVE, None)
        assert loopback["token_endpoint_auth_method"] == "none"
        assert loopback["grant_types"] == ["authorization_code", "refresh_token"]
        assert loopback["response_types"] == ["code"]
        assert "client_secret" not in loopback and "client_secret_expires_at" not in loopback
        private_scheme = {**NATIVE, "redirect_uris": ["com.example.app:/oauth"]}
        assert registered(http, private_scheme, None)["redirect_uris"] == ["com.example.app:/oauth"]
        # The same client_name twice: each installation of an app registers itself.
        registered(http, NATIVE, None)
        confidential = {**NATIVE, "token_endpoint_auth_method": "client_secret_basic"}
        assert_oauth_error(register(http, confidential), 401, "invalid_token")
        web = {**NATIVE, "redirect_uris": ["https://app.example/callback"]}
        assert_oauth_error(register(http, web), 401, "invalid_token")
        machine = {**MACHINE, "token_endpoint_auth_method": "none"}
        assert_oauth_error(register(http, machine), 400, "invalid_client_metadata")
        # An initial access token still registers any client while registration is open.
        assert registered(http, MACHINE, initial_token(open_server))["client_secret"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://app.example/callback"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://app.example/cb"}, "invalid_client_metadata"),
        ({"logo_uri": "http://app.example/logo.png"}, "invalid_client_metadata"),
        ({"tos_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"response_types": []}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"),
        ({"scope": "openid idp:admin"}, "invalid_client_metadata"),
        ({"jwks": "not a key set"}, "invalid_client_metadata"),
        ({"client_name": 7}, "invalid_client_metadata"),
    ],
)
def test_invalid_metadata_is_refused_and_spends_no_token_use(
    server: LiveServer, change: dict[str, Any], error: str
) -> None:
    token = initial_token(server, uses=1)
    web = {"client_name": "Web", "redirect_uris": ["https://app.example/callback"]}
    with client_for(server) as http:
        assert_oauth_error(register(http, {**web, **change}, token), 400, error)
        assert registered(http, web, token)["grant_types"] == [
            "authorization_code",
            "refresh_token",
        ]


def test_malformed_bodies_are_refused(server: LiveServer) -> None:
    token = initial_token(server)
    with client_for(server) as http:
        headers = {**bearer(token), "content-type": "application/json"}
        for body in (b"{", b"[]", b"\xff"):
            answer = http.post("/register", content=body, headers=headers)
            assert_oauth_error(answer, 400, "invalid_request")
        form = http.post("/register", data={"client_name": "x"}, headers=bearer(token))
        assert_oauth_error(form, 400, "invalid_request")


def test_read_replace_and_delete_with_the_registration_access_token(server: LiveServer) -> None:
    web = {
        "client_name": "Web",
        "redirect_uris": ["https://app.example/callback"],
        "scope": "profile",
    }
    with client_for(server) as http:
        document = registered(http, web, initial_token(server))
        uri = document["registration_client_uri"]
        auth = bearer(document["registration_access_token"])
        client_id, secret = document["client_id"], document["client_secret"]
        read = http.get(uri, headers=auth)
        assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
        shown = read.json()
        assert shown["client_name"] == "Web" and shown["scope"] == "profile"
        assert "client_secret" not in shown and "registration_access_token" not in shown
        replacement = {
            **web,
            "client_id": client_id,
            "client_secret": secret,
            "client_name": "Web, renamed",
            "redirect_uris": ["https://app.example/new-callback"],
        }
        replaced = http.put(uri, json=replacement, headers=auth)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["client_name"] == "Web, renamed"
        assert replaced.json()["redirect_uris"] == ["https://app.example/new-callback"]
        assert http.get(uri, headers=auth).json()["redirect_uris"] == [
            "https://app.example/new-callback"
        ]
        # The secret is unchanged by a replacement.
        answer = http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
        )
        assert answer.status_code != 401, answer.text
        wrong_id = http.put(uri, json={**replacement, "client_id": "other"}, headers=auth)
        assert_oauth_error(wrong_id, 400, "invalid_request")
        wrong_secret = http.put(uri, json={**replacement, "client_secret": "x"}, headers=auth)
        assert_oauth_error(wrong_secret, 400, "invalid_request")
        bad = http.put(uri, json={**replacement, "logo_uri": "http://x.example"}, headers=auth)
        assert_oauth_error(bad, 400, "invalid_client_metadata")
        assert_oauth_error(http.get(uri), 401, "invalid_token")
        deleted = http.delete(uri, headers=auth)
        assert deleted.status_code == 204
        assert_oauth_error(http.get(uri, headers=auth), 401, "invalid_token")
    actions = [(r.action, r.actor) for r in audit(server) if r.target == client_id]
    assert actions == [
        ("client.register", "registration:127.0.0.1"),
        ("client.update", "registration:127.0.0.1"),
        ("client.delete", "registration:127.0.0.1"),
    ]


def test_a_registration_access_token_opens_its_own_client_only(server: LiveServer) -> None:
    token = initial_token(server)
    with client_for(server) as http:
        first = registered(http, MACHINE, token)
        second = registered(http, {**MACHINE, "client_name": "Other"}, token)
        auth = bearer(first["registration_access_token"])
        other_uri = second["registration_client_uri"]
        refused = [
            http.get(other_uri, headers=auth),
            http.put(other_uri, json={**MACHINE, "client_id": second["client_id"]}, headers=auth),
            http.delete(other_uri, headers=auth),
            http.get(f"{server.url}/register/no-such-client", headers=auth),
        ]
        bodies = [assert_oauth_error(answer, 401, "invalid_token") for answer in refused]
        # Whether the other client exists is not told.
        assert all(body == bodies[-1] for body in bodies)
        still = http.get(other_uri, headers=bearer(second["registration_access_token"]))
        assert still.status_code == 200 and still.json()["client_name"] == "Other"


def test_clients_made_by_administrators_have_no_registration(server: LiveServer) -> None:
    admin_id, admin_secret = register_admin(server)
    with client_for(server) as http:
        admin_token = get_token(http, admin_id, admin_secret)
        answer = http.get(f"/register/{admin_id}", headers=bearer(admin_token))
        assert_oauth_error(answer, 401, "invalid_token")
        # The admin API's twin of ``idp clients registration-token``.
        made = http.post(
            "/admin/registration-tokens",
            json={"expires_in": "1h", "uses": 1},
            headers=bearer(admin_token),
        )
        assert made.status_code == 201, made.text
        assert made.json()["uses"] == 1
        registered(http, MACHINE, made.json()["initial_access_token"])
        assert_oauth_error(
            register(http, MACHINE, made.json()["initial_access_token"]), 401, ("invalid_token")
        )
    rows = [r for r in audit(server) if r.action == "client.registration_token"]
    assert [r.actor for r in rows] == [f"admin:{admin_id}"]


def test_a_revoked_initial_access_token_registers_no_more_clients(server: LiveServer) -> None:
    admin_id, admin_secret = register_admin(server)
    with client_for(server) as http:
        admin = bearer(get_token(http, admin_id, admin_secret))
        made = http.post("/admin/registration-tokens", json={"uses": 5}, headers=admin).json()
        first = registered(http, MACHINE, made["initial_access_token"])
        listed = http.get("/admin/registration-tokens", headers=admin)
        assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
        assert listed.json() == [
            {
                "id": made["id"],
                "created_at": listed.json()[0]["created_at"],
                "expires_at": made["expires_at"],
                "uses_left": 4,
            }
        ]
        revoked = http.delete(f"/admin/registration-tokens/{made['id']}", headers=admin)
        assert revoked.status_code == 204 and revoked.headers["cache-control"] == "no-store"
        refused = register(http, {**MACHINE, "client_name": "Second"}, made["initial_access_token"])
        assert_oauth_error(refused, 401, "invalid_token")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        # The client it registered before stays, with its own registration.
        kept = http.get(
            first["registration_client_uri"], headers=bearer(first["registration_access_token"])
        )
        assert kept.status_code == 200 and kept.json()["client_name"] == "Billing"
        assert http.get("/admin/registration-tokens?all=true", headers=admin).json() == []
        again = http.delete(f"/admin/registration-tokens/{made['id']}", headers=admin)
        assert_error(again, 404, "not_found")
    clients = with_store(server.settings.database_url, lambda s: s.list_clients())
    assert [c.client_id for c in clients if c.client_id != admin_id] == [first["client_id"]]
    rows = [r for r in audit(server) if r.action == "client.registration_token.revoke"]
    assert [(r.actor, r.subject, r.target, r.outcome) for r in rows] == [
        (f"admin:{admin_id}", admin_id, made["id"], "success"),
        (f"admin:{admin_id}", admin_id, made["id"], "failure"),
    ]
    assert rows[1].detail["status"] == 404


def test_the_token_list_shows_spent_tokens_on_request(server: LiveServer) -> None:
    admin_id, admin_secret = register_admin(server)
    with client_for(server) as http:
        admin = bearer(get_token(http, admin_id, admin_secret))
        spent = http.post("/admin/registration-tokens", json={"uses": 1}, headers=admin).json()
        live = http.post("/admin/registration-tokens", json={}, headers=admin).json()
        registered(http, MACHINE, spent["initial_access_token"])
        default = http.get("/admin/registration-tokens", headers=admin).json()
        assert [(t["id"], t["uses_left"]) for t in default] == [(live["id"], None)]
        every = http.get("/admin/registration-tokens?all=true", headers=admin).json()
        assert [(t["id"], t["uses_left"]) for t in every] == [
            (spent["id"], 0),
            (live["id"], None),
        ]
        assert http.get("/admin/registration-tokens?all=false", headers=admin).json() == default
        for query in ("all=yes", "all=1", "every=true", "all=true&all=true"):
            answer = http.get(f"/admin/registration-tokens?{query}", headers=admin)
            assert_error(answer, 400, "invalid_request")
        assert_error(http.get("/admin/registration-tokens"), 401, "invalid_token")
        anonymous = http.delete(f"/admin/registration-tokens/{live['id']}")
        assert_error(anonymous, 401, "invalid_token")
        assert len(http.get("/admin/registration-tokens", headers=admin).json()) == 1


def test_registration_requests_are_rate_limited_per_address(limited_server: LiveServer) -> None:
    with client_for(limited_server) as http:
        for _ in range(3):
            assert register(http, NATIVE).status_code == 401
        answer = register(http, NATIVE, initial_token(limited_server))
        body = assert_oauth_error(answer, 429, "too_many_requests")
        assert "retry" in body["error_description"]
        assert 1 <= int(answer.headers["retry-after"]) <= 3600
        assert http.get("/register/anything").status_code == 429
