"""The admin API over real HTTP on both stores: bearer auth, every operation, every audit row."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.keyring.material import unseal
from idp.oauth.registration import ClientRequest, build_client
from idp.store.base import AuditEntry, KeyRecord, Store, UserRecord
from tests.support.admin_api import assert_error, audit, bearer, get_token, register_admin
from tests.support.cli import clean_environ
from tests.support.commands import run_idp
from tests.support.server import LiveServer, basic, register_client, with_store
from tests.support.sso import AuthorizeParams, World, redeem, sign_in


def run_idp_failing(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run the CLI, expect exit 1, and return its one-line error."""
    completed = subprocess.run(
        [sys.executable, "-m", "idp", *args],
        cwd=cwd,
        env={**clean_environ(), **env},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr.decode()
    return completed.stderr.decode()


def keys_in_store(live_server: LiveServer) -> list[KeyRecord]:
    result: list[KeyRecord] = with_store(live_server.settings.database_url, lambda s: s.list_keys())
    return result


def assert_challenge(response: httpx.Response, error: str) -> None:
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'error="{error}"' in challenge


def signed_by_ring_key(live_server: LiveServer, claims: dict[str, Any], **header: str) -> str:
    """A token signed by the server's own active ES256 key, with the claims given."""
    record = next(k for k in keys_in_store(live_server) if k.alg == "ES256" and k.state == "active")
    key = unseal(record, live_server.settings.key_encryption_key)
    head = {"alg": "ES256", "kid": record.kid, "typ": "at+jwt", **header}
    return jwt.encode(head, claims, key, algorithms=["ES256"])


def admin_claims(live_server: LiveServer, client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": live_server.settings.issuer,
        "sub": client_id,
        "aud": f"{live_server.settings.issuer}/admin",
        "exp": now + 300,
        "iat": now,
        "jti": "test-jti",
        "client_id": client_id,
        "scope": "idp:admin",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


# -- authentication -----------------------------------------------------------------------


def test_admin_client_gets_a_token_for_the_admin_audience(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_admin(live_server)
    shown = http.get("/admin/keys", headers=bearer(get_token(http, client_id, secret)))
    assert shown.status_code == 200, shown.text
    token = get_token(http, client_id, secret)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["aud"] == f"{live_server.url}/admin"
    assert payload["scope"] == "idp:admin"


def test_refused_tokens_are_401_and_audited(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, _ = admin
    foreign = ECKey.generate_key("P-256", private=True)
    wrong_key = jwt.encode(
        {"alg": "ES256", "kid": "not-ours", "typ": "at+jwt"},
        admin_claims(live_server, admin_id),
        foreign,
        algorithms=["ES256"],
    )
    refused = {
        "no token": {},
        "basic scheme": basic("a", "b"),
        "malformed": bearer("not a token"),
        "not a jws": bearer("abc.def"),
        "unknown key": bearer(wrong_key),
        "expired": bearer(
            signed_by_ring_key(
                live_server,
                admin_claims(
                    live_server, admin_id, exp=int(time.time()) - 120, iat=int(time.time()) - 900
                ),
            )
        ),
        "other issuer": bearer(
            signed_by_ring_key(
                live_server, admin_claims(live_server, admin_id, iss="https://evil.example")
            )
        ),
        "other audience": bearer(
            signed_by_ring_key(
                live_server, admin_claims(live_server, admin_id, aud="https://api.example")
            )
        ),
        "wrong typ": bearer(
            signed_by_ring_key(live_server, admin_claims(live_server, admin_id), typ="JWT")
        ),
        "issued in the future": bearer(
            signed_by_ring_key(
                live_server, admin_claims(live_server, admin_id, iat=int(time.time()) + 3600)
            )
        ),
        "tampered": bearer(
            signed_by_ring_key(live_server, admin_claims(live_server, admin_id))[:-6] + "AAAAAA"
        ),
    }
    before = len(audit(live_server))
    for name, headers in refused.items():
        response = http.get("/admin/clients", headers=headers)
        assert_error(response, 401, "invalid_token")
        if name == "no token":
            # RFC 6750 section 3.1: no credentials at all, so no error code in the challenge.
            assert response.headers["www-authenticate"] == 'Bearer realm="idp"'
        else:
            assert_challenge(response, "invalid_token")

    rows = audit(live_server)[before:]
    assert {(r.action, r.outcome, r.target) for r in rows} == {
        ("client.list", "failure", "clients")
    }
    assert all(r.detail["status"] == 401 and r.detail["error"] == "invalid_token" for r in rows)
    assert {r.detail["source"] for r in rows} == {"127.0.0.1"}
    # Counted, one row per actor and minute. Signed by one of our keys: the client is known
    # even though the token is refused (expired, other issuer or audience, from the future).
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.actor] = counted.get(row.actor, 0) + row.count
    assert counted == {"anonymous": 7, f"admin:{admin_id}": 4}
    assert len(rows) <= 4  # two actors, and the test may straddle a minute
    tokens = [h.get("Authorization", "").removeprefix("Bearer ") for h in refused.values()]
    stored = json.dumps([dict(r.detail) for r in rows]) + "".join(r.actor for r in rows)
    assert not any(t and len(t) > 20 and t in stored for t in tokens)


def test_token_without_admin_scope_is_403_and_audited(
    live_server: LiveServer, http: httpx.Client
) -> None:
    audience = f"{live_server.settings.issuer}/admin"
    client_id, secret = register_client(live_server.settings, scope="read", audiences=[audience])
    response = http.get("/admin/users", headers=bearer(get_token(http, client_id, secret)))
    assert_error(response, 403, "insufficient_scope")
    assert_challenge(response, "insufficient_scope")
    assert 'scope="idp:admin"' in response.headers["www-authenticate"]
    last = audit(live_server)[-1]
    assert (last.actor, last.action, last.outcome, last.detail["status"]) == (
        f"admin:{client_id}",
        "user.list",
        "failure",
        403,
    )


def test_token_of_a_deleted_or_demoted_admin_client_is_refused(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    other_id, other_secret = register_admin(live_server, "second")
    other = bearer(get_token(http, other_id, other_secret))
    demoted = http.patch(f"/admin/clients/{other_id}", json={"scope": "read"}, headers=headers)
    assert demoted.status_code == 200, demoted.text
    assert_error(http.get("/admin/keys", headers=other), 401, "invalid_token")
    assert http.delete(f"/admin/clients/{other_id}", headers=headers).status_code == 204
    assert_error(http.get("/admin/keys", headers=other), 401, "invalid_token")


def test_token_signed_by_a_revoked_key_is_refused(
    live_server: LiveServer, http: httpx.Client
) -> None:
    admin_id, secret = register_admin(live_server)
    headers = bearer(get_token(http, admin_id, secret))  # RS256: the client's default alg
    spare_id, spare_secret = register_admin(live_server, "spare")
    rs256 = next(k for k in keys_in_store(live_server) if k.alg == "RS256" and k.state == "active")
    revoked = http.post(f"/admin/keys/{rs256.kid}/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert_error(http.get("/admin/keys", headers=headers), 401, "invalid_token")
    fresh = bearer(get_token(http, spare_id, spare_secret))
    assert http.get("/admin/keys", headers=fresh).status_code == 200


def test_admin_scope_is_refused_to_a_client_with_a_user_facing_grant(
    live_server: LiveServer,
    http: httpx.Client,
    admin: tuple[str, dict[str, str]],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    _, headers = admin
    redirect = {"redirect_uris": ["https://app.example/cb"]}
    for body in (
        {"name": "a", "admin": True, "grant_types": ["authorization_code"], **redirect},
        {"name": "b", "admin": True, "grant_types": ["refresh_token"]},
        {"name": "c", "scope": "idp:admin", "grant_types": ["authorization_code"], **redirect},
    ):
        refused = assert_error(
            http.post("/admin/clients", json=body, headers=headers), 400, "invalid_client_metadata"
        )
        assert "idp:admin" in refused["error_description"]
    web = http.post(
        "/admin/clients",
        json={"name": "web", "grant_types": ["authorization_code"], **redirect},
        headers=headers,
    ).json()
    ops = http.post("/admin/clients", json={"name": "ops2", "admin": True}, headers=headers).json()
    for client_id, change in (
        (web["client_id"], {"scope": "idp:admin"}),
        (ops["client_id"], {"grant_types": ["client_credentials", "authorization_code"]}),
    ):
        patched = http.patch(f"/admin/clients/{client_id}", json=change, headers=headers)
        assert_error(patched, 400, "invalid_client_metadata")

    line = run_idp_failing(
        env,
        tmp_path,
        "clients",
        "create",
        "--admin",
        "--name",
        "cli-web",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    )
    assert line.count("\n") == 1 and "idp:admin" in line and "authorization_code" in line
    line = run_idp_failing(
        env, tmp_path, "clients", "update", web["client_id"], "--scope", "idp:admin"
    )
    assert line.count("\n") == 1 and "idp:admin" in line


def test_a_users_token_never_opens_the_admin_api(world: World) -> None:
    """Even through a client stored with idp:admin and the code grant (registered before the
    rule above existed), a person's token is refused, and the refusal names the person."""
    settings = world.server.settings
    redirect_uri = "http://127.0.0.1:8765/legacy/cb"

    async def legacy(store: Store) -> str:
        request = ClientRequest(
            name="legacy",
            public=True,
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code"],
        )
        record, _ = build_client(request, time.time())
        audience = f"{settings.issuer}/admin"
        await store.create_client(replace(record, scope=("idp:admin",), audiences=(audience,)))
        return record.client_id

    client_id: str = with_store(settings.database_url, legacy)
    request = AuthorizeParams(client_id, redirect_uri, scope="openid idp:admin")
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    issued = redeem(world.url, request, code)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["scope"] == "openid idp:admin" and payload["sub"] == world.user_id

    refused = httpx.get(f"{world.url}/admin/keys", headers=bearer(token), timeout=30)
    assert_error(refused, 401, "invalid_token")
    assert_challenge(refused, "invalid_token")
    last = with_store(settings.database_url, lambda s: s.list_audit())[-1]
    assert (last.actor, last.subject, last.action, last.outcome) == (
        f"admin:{client_id}",
        world.user_id,
        "key.list",
        "failure",
    )


def test_admin_rows_record_the_tokens_subject(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    before = len(audit(live_server))
    made = http.post(
        "/admin/users",
        json={"username": "sam", "password": "a long enough password"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert http.post("/admin/keys/rotate", json={"alg": "ES256"}, headers=headers).is_success
    assert_error(http.get("/admin/users/nobody", headers=headers), 404, "not_found")
    rows = audit(live_server)[before:]
    assert {r.action for r in rows} >= {"user.create", "key.activate", "user.show"}
    assert {(r.actor, r.subject, r.count) for r in rows} == {(f"admin:{admin_id}", admin_id, 1)}


def test_refused_anonymous_calls_are_counted_per_source_and_minute(world: World) -> None:
    """Nobody without a token can grow the audit trail by more than a row a minute."""
    url = world.server.settings.database_url

    def rows() -> list[AuditEntry]:
        found: list[AuditEntry] = with_store(url, lambda s: s.list_audit())
        return found

    before = len(rows())
    calls = [("GET", "/admin/keys"), ("DELETE", "/admin/users/x"), ("POST", "/admin/clients")]
    with httpx.Client(base_url=world.url, timeout=30) as http:
        for n in range(60):
            method, path = calls[n % 3]
            assert_error(http.request(method, path), 401, "invalid_token")
        added = rows()[before:]
        assert 1 <= len(added) <= 2  # the calls may straddle a minute
        assert sum(r.count for r in added) == 60
        assert {(r.actor, r.outcome, r.detail["source"]) for r in added} == {
            ("anonymous", "failure", "127.0.0.1")
        }
        world.clock.advance(120)
        for _ in range(10):
            assert_error(http.get("/admin/users"), 401, "invalid_token")
    later = rows()[before + len(added) :]
    assert 1 <= len(later) <= 2
    assert sum(r.count for r in later) == 10


def test_token_revoked_through_the_revocation_endpoint_is_refused(
    live_server: LiveServer, http: httpx.Client
) -> None:
    """RFC 7009: the admin API honours a revoked jti, as introspection does."""
    admin_id, secret = register_admin(live_server)
    token = get_token(http, admin_id, secret)
    kept = get_token(http, admin_id, secret)
    assert http.get("/admin/keys", headers=bearer(token)).status_code == 200
    revoked = http.post("/revoke", data={"token": token}, headers=basic(admin_id, secret))
    assert revoked.status_code == 200
    response = http.get("/admin/keys", headers=bearer(token))
    assert_error(response, 401, "invalid_token")
    assert_challenge(response, "invalid_token")
    last = audit(live_server)[-1]
    assert (last.actor, last.action, last.outcome) == (f"admin:{admin_id}", "key.list", "failure")
    assert http.get("/admin/keys", headers=bearer(kept)).status_code == 200  # only that jti


# -- keys ---------------------------------------------------------------------------------


def test_keys_list_rotate_and_revoke(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    actor = f"admin:{admin_id}"
    listed = http.get("/admin/keys", headers=headers)
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    assert {(k["alg"], k["state"]) for k in listed.json()} == {
        ("RS256", "active"),
        ("RS256", "next"),
        ("ES256", "active"),
        ("ES256", "next"),
    }
    assert all("private" not in json.dumps(k) and "d" not in k for k in listed.json())

    before = len(audit(live_server))
    rotated = http.post("/admin/keys/rotate", json={"alg": "ES256"}, headers=headers)
    assert rotated.status_code == 200, rotated.text
    (rotation,) = rotated.json()
    assert rotation["alg"] == "ES256"
    # The answering process signs with the new key at once.
    kids = [k["kid"] for k in http.get("/jwks.json").json()["keys"]]
    assert rotation["active_kid"] in kids and rotation["next_kid"] in kids
    rows = audit(live_server)[before:]
    assert {(r.actor, r.action, r.target) for r in rows} == {
        (actor, "key.retire", rotation["retired_kid"]),
        (actor, "key.activate", rotation["active_kid"]),
        (actor, "key.create", rotation["next_kid"]),
    }

    both = http.post("/admin/keys/rotate", headers=headers)
    assert both.status_code == 200, both.text
    assert sorted(r["alg"] for r in both.json()) == ["ES256", "RS256"]

    revoked = http.post(f"/admin/keys/{rotation['retired_kid']}/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["kid"], revoked.json()["state"]) == (rotation["retired_kid"], "revoked")
    assert rotation["retired_kid"] not in http.get("/jwks.json").text
    last = audit(live_server)[-1]
    assert (last.actor, last.action, last.target, last.outcome) == (
        actor,
        "key.revoke",
        rotation["retired_kid"],
        "success",
    )

    before = len(audit(live_server))
    assert_error(
        http.post(f"/admin/keys/{rotation['retired_kid']}/revoke", headers=headers), 409, "conflict"
    )
    assert_error(http.post("/admin/keys/no-such-kid/revoke", headers=headers), 404, "not_found")
    assert_error(
        http.post("/admin/keys/rotate", json={"alg": "HS256"}, headers=headers),
        400,
        "invalid_request",
    )
    assert_error(
        http.post("/admin/keys/rotate", json={"algs": ["ES256"]}, headers=headers),
        400,
        "invalid_request",
    )
    rows = audit(live_server)[before:]
    assert [(r.actor, r.action, r.target, r.outcome, r.detail["status"]) for r in rows] == [
        (actor, "key.revoke", rotation["retired_kid"], "failure", 409),
        (actor, "key.revoke", "no-such-kid", "failure", 404),
        (actor, "key.rotate", "rotate", "failure", 400),
        (actor, "key.rotate", "rotate", "failure", 400),
    ]


# -- clients ------------------------------------------------------------------------------


def test_clients_create_list_show_update_delete(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    actor = f"admin:{admin_id}"
    created = http.post(
        "/admin/clients",
        json={"name": "reports", "scope": "read", "audiences": ["https://api.example"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    document = created.json()
    client_id, secret = document["client_id"], document["client_secret"]
    assert document["grant_types"] == ["client_credentials"]
    assert get_token(http, client_id, secret)  # the secret shown once works

    shown = http.get(f"/admin/clients/{client_id}", headers=headers)
    assert shown.status_code == 200
    assert "client_secret" not in shown.json()
    assert shown.json()["name"] == "reports"
    names = [c["name"] for c in http.get("/admin/clients", headers=headers).json()]
    assert names == ["ops", "reports"]

    patched = http.patch(
        f"/admin/clients/{client_id}",
        json={
            "name": "reports-v2",
            "scope": "read write",
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["client_credentials", "authorization_code"],
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "reports-v2"
    assert patched.json()["scope"] == "read write"
    assert patched.json()["audiences"] == ["https://api.example"]  # untouched
    assert http.get(f"/admin/clients/{client_id}", headers=headers).json() == patched.json()
    assert get_token(http, client_id, secret, scope="write")  # same secret, new scope

    assert http.delete(f"/admin/clients/{client_id}", headers=headers).status_code == 204
    assert_error(http.get(f"/admin/clients/{client_id}", headers=headers), 404, "not_found")

    rows = [r for r in audit(live_server) if r.target == client_id]
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        (actor, "client.create", "success"),
        (actor, "client.update", "success"),
        (actor, "client.delete", "success"),
        (actor, "client.show", "failure"),
    ]
    assert rows[1].detail == {"fields": ["name", "redirect_uris", "grant_types", "scope"]}
    assert secret not in json.dumps([dict(r.detail) for r in audit(live_server)])


def test_admin_client_made_through_the_api_opens_it(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    created = http.post("/admin/clients", json={"name": "ops2", "admin": True}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["scope"] == "idp:admin"
    assert created.json()["audiences"] == [f"{live_server.url}/admin"]
    token = get_token(http, created.json()["client_id"], created.json()["client_secret"])
    assert http.get("/admin/users", headers=bearer(token)).status_code == 200


def test_backchannel_logout_uri_is_set_changed_and_removed(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    created = http.post(
        "/admin/clients",
        json={"name": "rp", "backchannel_logout_uri": "https://rp.example/bc"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["backchannel_logout_uri"] == "https://rp.example/bc"
    path = f"/admin/clients/{created.json()['client_id']}"
    moved = http.patch(
        path, json={"backchannel_logout_uri": "https://rp2.example/bc"}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["backchannel_logout_uri"] == "https://rp2.example/bc"
    removed = http.patch(path, json={"backchannel_logout_uri": ""}, headers=headers)
    assert removed.json()["backchannel_logout_uri"] is None
    updates = [
        r for r in audit(live_server) if r.action == "client.update" and r.outcome == "success"
    ]
    assert [r.detail for r in updates] == [{"fields": ["backchannel_logout_uri"]}] * 2


def test_client_validation_failures(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    client = http.post("/admin/clients", json={"name": "web"}, headers=headers).json()
    path = f"/admin/clients/{client['client_id']}"
    before = len(audit(live_server))
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/admin/clients", {"name": "web"}, 409, "conflict"),
        ("POST", "/admin/clients", {"scope": "x"}, 400, "invalid_request"),
        ("POST", "/admin/clients", {"name": "a", "colour": "red"}, 400, "invalid_request"),
        ("POST", "/admin/clients", {"name": 5}, 400, "invalid_request"),
        ("POST", "/admin/clients", {"name": "a", "redirect_uris": "x"}, 400, "invalid_request"),
        ("POST", "/admin/clients", {"name": "a", "public": "yes"}, 400, "invalid_request"),
        (
            "POST",
            "/admin/clients",
            {"name": "a", "redirect_uris": ["http://evil.example/cb"]},
            400,
            "invalid_client_metadata",
        ),
        (
            "POST",
            "/admin/clients",
            {"name": "a", "public": True, "grant_types": ["client_credentials"]},
            400,
            "invalid_client_metadata",
        ),
        (
            "POST",
            "/admin/clients",
            {"name": "a", "backchannel_logout_uri": "https://169.254.169.254/x"},
            400,
            "invalid_client_metadata",
        ),
        (
            "POST",
            "/admin/clients",
            {"name": "a", "backchannel_logout_uri": "http://127.0.0.1:9/bc"},
            400,
            "invalid_client_metadata",
        ),
        (
            "PATCH",
            path,
            {"backchannel_logout_uri": "https://0x7f.1/"},
            400,
            "invalid_client_metadata",
        ),
        (
            "PATCH",
            path,
            {"backchannel_logout_uri": "https://10.0.0.1/"},
            400,
            "invalid_client_metadata",
        ),
        ("PATCH", path, {"name": "ops"}, 409, "conflict"),
        ("PATCH", path, {"audiences": ["no-scheme"]}, 400, "invalid_client_metadata"),
        ("PATCH", path, {"grant_types": ["authorization_code"]}, 400, "invalid_client_metadata"),
        ("PATCH", path, {"grant_types": []}, 400, "invalid_client_metadata"),
        ("PATCH", path, {"client_id": "new"}, 400, "invalid_request"),
        ("PATCH", path, {"scope": ["read"]}, 400, "invalid_request"),
        ("PATCH", "/admin/clients/nope", {"name": "x"}, 404, "not_found"),
        ("DELETE", "/admin/clients/nope", None, 404, "not_found"),
    ]
    for method, url, body, status, error in cases:
        response = http.request(method, url, json=body, headers=headers)
        assert_error(response, status, error)
    after = http.get(path, headers=headers).json()
    assert after == {k: v for k, v in client.items() if k != "client_secret"}
    rows = audit(live_server)[before:]
    assert [(r.action, r.detail["status"]) for r in rows] == [
        ({"POST": "client.create", "PATCH": "client.update", "DELETE": "client.delete"}[m], s)
        for m, _, _, s, _ in cases
    ]
    assert {(r.actor, r.outcome) for r in rows} == {(f"admin:{admin_id}", "failure")}


def test_malformed_bodies_are_400_invalid_request(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    json_type = {**headers, "Content-Type": "application/json"}
    bodies: list[tuple[dict[str, str], bytes]] = [
        ({**headers, "Content-Type": "text/plain"}, b'{"name": "x"}'),
        (headers, b"name=x"),
        (json_type, b'{"name": '),
        (json_type, b'["name"]'),
        (json_type, b'{"name": "x", "name": "y"}'),
        (json_type, b'{"name": "x", "scope": NaN}'),
        (json_type, b"\xff\xfe"),
        (json_type, b""),
    ]
    before = len(audit(live_server))
    for head, content in bodies:
        response = http.post("/admin/clients", content=content, headers=head)
        assert_error(response, 400, "invalid_request")
    assert len(audit(live_server)) == before + len(bodies)
    assert http.get("/admin/clients", headers=headers).json()[-1]["name"] == "ops"


# -- users --------------------------------------------------------------------------------


def user_row(live_server: LiveServer, user_id: str) -> UserRecord | None:
    result: UserRecord | None = with_store(
        live_server.settings.database_url, lambda s: s.get_user(user_id)
    )
    return result


def test_users_create_list_show_update_delete(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    actor = f"admin:{admin_id}"
    created = http.post(
        "/admin/users",
        json={"username": "ada", "password": "first pass", "email": "ada@example.com"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert "first pass" not in created.text and "password" not in created.text
    user = created.json()
    assert (user["username"], user["email"], user["name"], user["disabled"]) == (
        "ada",
        "ada@example.com",
        None,
        False,
    )
    row = user_row(live_server, user["id"])
    assert row is not None and row.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(row.password_hash, "first pass")

    assert http.get(f"/admin/users/{user['id']}", headers=headers).json() == user
    assert [u["username"] for u in http.get("/admin/users", headers=headers).json()] == ["ada"]

    patched = http.patch(
        f"/admin/users/{user['id']}",
        json={"email": None, "name": "Ada L.", "disabled": True, "password": "second pass"},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["email"], patched.json()["name"], patched.json()["disabled"]) == (
        None,
        "Ada L.",
        True,
    )
    assert "second pass" not in patched.text
    row = user_row(live_server, user["id"])
    assert row is not None and PasswordHasher().verify(row.password_hash, "second pass")

    assert http.delete(f"/admin/users/{user['id']}", headers=headers).status_code == 204
    assert user_row(live_server, user["id"]) is None
    assert_error(http.delete(f"/admin/users/{user['id']}", headers=headers), 404, "not_found")

    rows = [r for r in audit(live_server) if r.target == user["id"]]
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        (actor, "user.create", "success"),
        (actor, "user.update", "success"),
        (actor, "user.delete", "success"),
        (actor, "user.delete", "failure"),
    ]
    assert rows[1].detail == {"fields": ["email", "name", "disabled", "password"]}
    everything = json.dumps([dict(r.detail) for r in audit(live_server)])
    assert "first pass" not in everything and "second pass" not in everything


def test_user_validation_failures(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    user = http.post(
        "/admin/users", json={"username": "bob", "password": "password b"}, headers=headers
    ).json()
    path = f"/admin/users/{user['id']}"
    before = len(audit(live_server))
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/admin/users", {"username": "bob", "password": "password b"}, 409, "conflict"),
        ("POST", "/admin/users", {"username": "carol"}, 400, "invalid_request"),
        (
            "POST",
            "/admin/users",
            {"username": "a b", "password": "password b"},
            400,
            "invalid_request",
        ),
        ("POST", "/admin/users", {"username": "c", "password": ""}, 400, "invalid_request"),
        ("POST", "/admin/users", {"username": "c", "password": 1}, 400, "invalid_request"),
        (
            "POST",
            "/admin/users",
            {"username": "c", "password": "password c", "x": 1},
            400,
            "invalid_request",
        ),
        ("PATCH", path, {"email": "not-an-email"}, 400, "invalid_request"),
        ("PATCH", path, {"disabled": "true"}, 400, "invalid_request"),
        ("PATCH", path, {"username": "robert"}, 400, "invalid_request"),
        ("PATCH", path, {"password": None}, 400, "invalid_request"),
        ("PATCH", "/admin/users/nope", {"name": "x"}, 404, "not_found"),
        ("GET", "/admin/users/nope", None, 404, "not_found"),
    ]
    for method, url, body, status, error in cases:
        assert_error(http.request(method, url, json=body, headers=headers), status, error)
    assert http.get(path, headers=headers).json() == user
    rows = audit(live_server)[before:]
    assert [(r.action, r.outcome, r.detail["status"]) for r in rows] == [
        ({"POST": "user.create", "PATCH": "user.update", "GET": "user.show"}[m], "failure", s)
        for m, _, _, s, _ in cases
    ]


def test_users_are_one_account_up_to_case_and_need_visible_names_and_long_passwords(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    made = http.post(
        "/admin/users", json={"username": "Alice", "password": "long enough"}, headers=headers
    )
    assert made.status_code == 201, made.text
    path = f"/admin/users/{made.json()['id']}"
    for spelling in ("alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"):
        body = {"username": spelling, "password": "long enough"}
        assert_error(http.post("/admin/users", json=body, headers=headers), 409, "conflict")
    for invisible in ("bo\u200bb", "bob\u2060", "\ufeffbob", "bo\u0007b", "bo\u202eb"):
        body = {"username": invisible, "password": "long enough"}
        refused = assert_error(
            http.post("/admin/users", json=body, headers=headers), 400, "invalid_request"
        )
        assert "zero-width" in refused["error_description"]
    short = "password too short: at least 8 characters are required"
    for method, url, body in (
        ("POST", "/admin/users", {"username": "carol", "password": "seven77"}),
        ("PATCH", path, {"password": "short"}),
    ):
        refused = assert_error(
            http.request(method, url, json=body, headers=headers), 400, "invalid_request"
        )
        assert refused["error_description"] == short
    assert http.patch(path, json={"password": "eight ch"}, headers=headers).status_code == 200
    listed = http.get("/admin/users", headers=headers).json()
    assert [u["username"] for u in listed] == ["Alice"]


# -- paths and the description --------------------------------------------------------------


def test_unknown_admin_paths_and_methods(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    admin_id, headers = admin
    before = len(audit(live_server))
    assert_error(http.get("/admin/nothing", headers=headers), 404, "not_found")
    assert_error(http.get("/admin", headers=headers), 404, "not_found")
    wrong = http.delete("/admin/keys", headers=headers)
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, HEAD"
    assert_error(http.delete("/admin/keys"), 401, "invalid_token")
    rows = audit(live_server)[before:]
    assert [(r.actor, r.action, r.detail["status"]) for r in rows] == [
        (f"admin:{admin_id}", "admin.request", 404),
        (f"admin:{admin_id}", "admin.request", 404),
        (f"admin:{admin_id}", "admin.request", 405),
        ("anonymous", "admin.request", 401),
    ]


def test_openapi_document_is_valid_and_matches_the_routes(
    live_server: LiveServer, http: httpx.Client
) -> None:
    from openapi_spec_validator import validate
    from starlette.routing import Route

    from idp.http.admin.routing import ANY_METHOD
    from idp.http.app import create_app

    response = http.get("/admin/openapi.json")  # a public description: no token needed
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises unless it is a valid OpenAPI 3.1 document
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": live_server.url}]

    described = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (route.path, method)
        for route in create_app(live_server.settings).routes
        if isinstance(route, Route) and route.path.startswith("/admin")
        for method in (route.methods or ())
        if method != "HEAD" and set(route.methods or ()) != set(ANY_METHOD)
    }
    assert described == served
    assert len(described) == 31

    scheme = document["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = path == "/admin/openapi.json"
            assert operation["security"] == ([] if public else [{"adminToken": []}])
            if not public:
                assert {"401", "403"} <= set(operation["responses"]), (path, method)
    patch = document["paths"]["/admin/clients/{client_id}"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {
        "name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "scope",
        "audiences",
        "grant_types",
        "backchannel_logout_uri",
        "require_mfa",
        "require_par",
        "jwks",
        "jwks_uri",
        "require_dpop",
        "token_exchange_subject_clients",
    }
    assert body["additionalProperties"] is False
    user_patch = document["paths"]["/admin/users/{user_id}"]["patch"]
    user_body = user_patch["requestBody"]["content"]["application/json"]["schema"]
    assert set(user_body["properties"]) == {"email", "name", "disabled", "password"}


def test_cli_admin_client_opens_the_api(
    live_server: LiveServer, http: httpx.Client, env: dict[str, str], tmp_path: Path
) -> None:
    created = json.loads(
        run_idp(env, tmp_path, "clients", "create", "--admin", "--name", "ops-cli", "--json")
    )
    assert created["scope"] == "idp:admin"
    assert created["audiences"] == [f"{live_server.url}/admin"]
    assert created["grant_types"] == ["client_credentials"]
    headers = bearer(get_token(http, created["client_id"], created["client_secret"]))
    made = http.post(
        "/admin/users", json={"username": "eve", "password": "password e"}, headers=headers
    )
    assert made.status_code == 201, made.text
    rows = audit(live_server)
    assert rows[-2].actor.startswith("cli") and rows[-2].action == "client.create"
    assert (rows[-1].actor, rows[-1].action) == (f"admin:{created['client_id']}", "user.create")

    public = run_idp_failing(
        env, tmp_path, "clients", "create", "--admin", "--public", "--name", "x"
    )
    assert "confidential" in public


def test_cli_updates_and_deletes_through_the_same_functions(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_idp(env, tmp_path, "migrate")
    client = json.loads(
        run_idp(env, tmp_path, "clients", "create", "--name", "svc", "--scope", "a", "--json")
    )
    updated = json.loads(
        run_idp(
            env,
            tmp_path,
            "clients",
            "update",
            client["client_id"],
            "--name",
            "svc2",
            "--scope",
            "a b",
            "--audience",
            "https://api.example",
            "--json",
        )
    )
    assert (updated["name"], updated["scope"], updated["audiences"]) == (
        "svc2",
        "a b",
        ["https://api.example"],
    )
    refused = run_idp_failing(
        env, tmp_path, "clients", "update", client["client_id"], "--audience", "nope"
    )
    assert "audience must be an absolute URI" in refused

    user = json.loads(
        run_idp(
            env,
            tmp_path,
            "users",
            "create",
            "--username",
            "dan",
            "--email",
            "dan@example.com",
            "--password-stdin",
            "--json",
            stdin="password 1\n",
        )
    )
    changed = json.loads(
        run_idp(
            env,
            tmp_path,
            "users",
            "update",
            "--no-email",
            "--disable",
            "--password-stdin",
            "--json",
            "--",
            user["id"],
            stdin="password 2\n",
        )
    )
    assert (changed["email"], changed["disabled"]) == (None, True)
    shown = json.loads(run_idp(env, tmp_path, "users", "show", user["id"], "--json"))
    assert shown == changed
    run_idp(env, tmp_path, "users", "delete", user["id"])
    assert "no user" in run_idp_failing(env, tmp_path, "users", "show", user["id"])

    documents = json.loads(run_idp(env, tmp_path, "audit", "list", "--json"))
    assert [
        (d["action"], d["target"])
        for d in documents
        if d["target"] in (client["client_id"], user["id"])
    ] == [
        ("client.create", client["client_id"]),
        ("client.update", client["client_id"]),
        ("user.create", user["id"]),
        ("user.update", user["id"]),
        ("user.delete", user["id"]),
    ]
    assert documents[-1]["actor"].startswith("cli")
    assert next(d for d in documents if d["action"] == "user.update")["detail"] == {
        "fields": ["email", "disabled", "password"]
    }
    assert "pw2" not in json.dumps(documents)
