"""The admin API's twins of the CLI's key status and import, audit reading, user disable and
unlock, over real HTTP on both stores: each answer, each refusal, each audit row."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from idp.sso.sessions import start_session
from idp.sso.throttle import reserve_login_attempt
from idp.store.base import Store
from tests.support.admin_api import assert_error, audit, bearer, get_token
from tests.support.clocks import FakeClock
from tests.support.commands import run_idp
from tests.support.server import LiveServer, register_client, with_store

Admin = tuple[str, dict[str, str]]


def pem_of(key: Any) -> str:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data.decode()


def failures(live_server: LiveServer, before: int) -> list[tuple[str, str, int, str]]:
    """The refused calls audited since row ``before``: actor, action, status, error."""
    return [
        (r.actor, r.action, r.detail["status"], r.detail["error"])
        for r in audit(live_server)[before:]
        if r.outcome == "failure"
    ]


def make_user(http: httpx.Client, headers: dict[str, str], username: str) -> dict[str, Any]:
    made = http.post(
        "/admin/users", json={"username": username, "password": "long enough"}, headers=headers
    )
    assert made.status_code == 201, made.text
    user: dict[str, Any] = made.json()
    return user


# -- keys ---------------------------------------------------------------------------------


def test_key_status_is_the_clis(
    live_server: LiveServer, http: httpx.Client, admin: Admin, env: dict[str, str], tmp_path: Path
) -> None:
    _, headers = admin
    answer = http.get("/admin/keys/status", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    statuses = answer.json()
    cli = json.loads(run_idp(env, tmp_path, "keys", "status", "--json"))
    fixed = ("alg", "active_kid", "next_kid", "rotation_at", "retired_kids", "verifiers_safe")
    assert [{k: s[k] for k in fixed} for s in statuses] == [{k: s[k] for k in fixed} for s in cli]
    assert [s["alg"] for s in statuses] == list(live_server.settings.signing_algs)
    assert all(s["summary"] and s["active_kid"] for s in statuses)
    listed = http.get("/admin/keys", headers=headers).json()
    assert listed == json.loads(run_idp(env, tmp_path, "keys", "list", "--json"))
    assert {k["next_transition"] for k in listed} == {"activate", "retire"}


def test_key_import_joins_the_ring_at_once_and_is_audited(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    body = {"alg": "ES256", "pem": pem_of(ec.generate_private_key(ec.SECP256R1()))}
    imported = http.post("/admin/keys/import", json=body, headers=headers)
    assert imported.status_code == 201, imported.text
    key = imported.json()
    assert (key["alg"], key["state"]) == ("ES256", "next")
    assert "PRIVATE" not in imported.text
    # Published by the answering process before it answered.
    assert key["kid"] in {k["kid"] for k in http.get("/jwks.json").json()["keys"]}
    row = next(r for r in audit(live_server) if r.action == "key.import")
    assert (row.actor, row.subject, row.target) == (f"admin:{admin_id}", admin_id, key["kid"])
    assert row.detail == {"alg": "ES256", "state": "next"}

    again = assert_error(
        http.post("/admin/keys/import", json=body, headers=headers), 409, "conflict"
    )
    assert "already in the ring" in again["error_description"]


def test_key_import_refuses_bad_pems_with_400_and_writes_nothing(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    p256 = ec.generate_private_key(ec.SECP256R1())
    public = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    rsa_pem = pem_of(rsa.generate_private_key(65537, 2048))
    cases: list[tuple[Any, str]] = [
        ({"alg": "ES256", "pem": "hello"}, "not a PEM file"),
        ({"alg": "ES256", "pem": public.decode()}, "no private key"),
        ({"alg": "ES256", "pem": rsa_pem}, "ES256 needs a P-256 EC key"),
        ({"alg": "HS256", "pem": pem_of(p256)}, "alg must be one of"),
        ({"alg": "ES256"}, "pem is required"),
        ({"alg": "ES256", "pem": 7}, "pem must be a string"),
        ({"alg": "ES256", "pem": pem_of(p256), "state": "active"}, "unknown member"),
    ]
    keys_before = http.get("/admin/keys", headers=headers).json()
    before = len(audit(live_server))
    for body, fragment in cases:
        refused = http.post("/admin/keys/import", json=body, headers=headers)
        assert fragment in assert_error(refused, 400, "invalid_request")["error_description"]
    lone_surrogate = b'{"alg": "ES256", "pem": "-----BEGIN PRIVATE KEY-----\\n\\ud800"}'
    json_headers = {**headers, "Content-Type": "application/json"}
    refused = http.post("/admin/keys/import", content=lone_surrogate, headers=json_headers)
    assert_error(refused, 400, "invalid_request")
    assert http.get("/admin/keys", headers=headers).json() == keys_before
    actor = f"admin:{admin_id}"
    assert failures(live_server, before) == [(actor, "key.import", 400, "invalid_request")] * (
        len(cases) + 1
    )


def test_new_operations_need_the_admin_scope(live_server: LiveServer, http: httpx.Client) -> None:
    audience = f"{live_server.settings.issuer}/admin"
    client_id, secret = register_client(live_server.settings, scope="read", audiences=[audience])
    headers = bearer(get_token(http, client_id, secret))
    calls = [
        ("GET", "/admin/keys/status", "key.status"),
        ("POST", "/admin/keys/import", "key.import"),
        ("GET", "/admin/audit", "audit.list"),
        ("POST", "/admin/users/someone/unlock", "user.unlock"),
        ("POST", "/admin/users/someone/disable", "user.disable"),
    ]
    before = len(audit(live_server))
    for method, path, _ in calls:
        refused = http.request(method, path, headers=headers, json={})
        assert_error(refused, 403, "insufficient_scope")
        assert 'scope="idp:admin"' in refused.headers["www-authenticate"]
        assert_error(http.request(method, path), 401, "invalid_token")
    # Refused before authentication: counted per actor, source and minute (the first call's
    # action names the row).
    rows = audit(live_server)[before:]
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.actor] = counted.get(row.actor, 0) + row.count
    assert counted == {f"admin:{client_id}": len(calls), "anonymous": len(calls)}
    assert {r.outcome for r in rows} == {"failure"}
    assert rows[0].action == "key.status"


# -- audit --------------------------------------------------------------------------------


def test_audit_pages_back_with_a_cursor_and_matches_the_cli(
    live_server: LiveServer, http: httpx.Client, admin: Admin, env: dict[str, str], tmp_path: Path
) -> None:
    _, headers = admin
    for n in range(5):
        make_user(http, headers, f"user{n}")
    first = http.get("/admin/audit", params={"limit": "3"}, headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    cli = json.loads(run_idp(env, tmp_path, "audit", "list", "--limit", "3", "--json"))
    assert page["entries"] == cli
    pages = [page["entries"]]
    while page["next_cursor"] is not None:
        query = {"limit": "3", "cursor": page["next_cursor"]}
        page = http.get("/admin/audit", params=query, headers=headers).json()
        pages.append(page["entries"])
    read = [entry for entries in reversed(pages) for entry in entries]
    stored = [r.id for r in audit(live_server)]
    assert [e["id"] for e in read] == stored
    assert all(1 <= len(p) <= 3 for p in pages)

    later = http.get("/admin/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=headers)
    assert later.json() == {"entries": [], "next_cursor": None}
    recent = http.get("/admin/audit", params={"since": "1h"}, headers=headers).json()
    assert [e["action"] for e in recent["entries"]].count("user.create") == 5


def test_audit_refuses_bad_queries_with_400(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    not_ours = base64.urlsafe_b64encode(b"before:abc").decode()
    queries: list[Any] = [
        {"cursor": "garbage!"},
        {"cursor": not_ours},
        {"cursor": ""},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"since": "yesterday"},
        {"since": "2026-01-31T12:00:00"},
        {"order": "desc"},
        [("limit", "2"), ("limit", "3")],
    ]
    before = len(audit(live_server))
    for query in queries:
        assert_error(
            http.get("/admin/audit", params=query, headers=headers), 400, "invalid_request"
        )
    actor = f"admin:{admin_id}"
    assert failures(live_server, before) == [(actor, "audit.list", 400, "invalid_request")] * len(
        queries
    )


# -- users --------------------------------------------------------------------------------


def test_unlock_forgets_failed_logins_and_is_audited_like_the_cli(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    user = make_user(http, headers, "Ada")
    settings = live_server.settings
    clock = FakeClock()
    who = {"username": "ada", "ip": "192.0.2.1"}

    async def lock(store: Store) -> bool:
        for _ in range(2 * settings.login_max_failures):
            assert (await reserve_login_attempt(store, settings, clock, **who)).allowed
            clock.advance(60)
        return (await reserve_login_attempt(store, settings, clock, **who)).allowed

    assert with_store(settings.database_url, lock) is False
    unlocked = http.post(f"/admin/users/{user['id']}/unlock", headers=headers)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json() == {
        "id": user["id"],
        "username": "Ada",
        "unlocked": True,
        "cleared": True,
    }
    again = http.post(f"/admin/users/{user['id']}/unlock", headers=headers).json()
    assert again["cleared"] is False

    rows = [r for r in audit(live_server) if r.action == "user.unlock"]
    assert [(r.actor, r.subject, r.target, r.detail) for r in rows] == [
        (f"admin:{admin_id}", admin_id, user["id"], {"username": "Ada"})
    ]


def start_sessions(live_server: LiveServer, user_id: str, count: int) -> None:
    settings = live_server.settings

    async def start(store: Store) -> None:
        for _ in range(count):
            await start_session(store, settings, time.time, user_id)

    with_store(settings.database_url, start)


def test_disable_ends_sessions_and_says_how_many(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    user = make_user(http, headers, "carol")
    start_sessions(live_server, user["id"], 2)
    disabled = http.post(f"/admin/users/{user['id']}/disable", headers=headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {**user, "disabled": True, "sessions_ended": 2}
    again = http.post(f"/admin/users/{user['id']}/disable", headers=headers).json()
    assert again["sessions_ended"] == 0
    shown = http.get(f"/admin/users/{user['id']}", headers=headers).json()
    assert shown["disabled"] is True
    updates = [r for r in audit(live_server) if r.action == "user.update"]
    assert [(r.actor, r.detail) for r in updates] == [
        (f"admin:{admin_id}", {"fields": ["disabled"]}),
        (f"admin:{admin_id}", {"fields": []}),
    ]


def test_an_unknown_user_is_404_and_audited(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    before = len(audit(live_server))
    for action in ("unlock", "disable"):
        refused = http.post(f"/admin/users/nobody/{action}", headers=headers)
        assert (
            "no user with id 'nobody'"
            in assert_error(refused, 404, "not_found")["error_description"]
        )
    assert failures(live_server, before) == [
        (f"admin:{admin_id}", "user.unlock", 404, "not_found"),
        (f"admin:{admin_id}", "user.disable", 404, "not_found"),
    ]


def test_new_operations_are_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/admin/openapi.json").json()["paths"]
    assert set(paths["/admin/keys/status"]) == {"get"}
    assert set(paths["/admin/keys/import"]) == {"post"}
    assert {"post"} == set(paths["/admin/users/{user_id}/unlock"])
    assert {"post"} == set(paths["/admin/users/{user_id}/disable"])
    audit_get = paths["/admin/audit"]["get"]
    assert [(p["name"], p["in"]) for p in audit_get["parameters"]] == [
        ("since", "query"),
        ("limit", "query"),
        ("cursor", "query"),
        ("action", "query"),
    ]
    assert audit_get["summary"]
    body = paths["/admin/keys/import"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["alg", "pem"]
