"""The admin API over real HTTP on both stores: bearer auth, every operation, every audit row."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.keyring.material import unseal
from idp.management import create_client
from idp.oauth.registration import ClientRequest, admin_client_request
from idp.store import make_store
from idp.store.base import AuditEntry, KeyRecord
from tests.conftest import LiveServer, register_client


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _with_store(live_server: LiveServer, work: Any) -> Any:
    store = make_store(live_server.settings.database_url)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def audit(live_server: LiveServer) -> list[AuditEntry]:
    result: list[AuditEntry] = asyncio.run(_with_store(live_server, lambda s: s.list_audit()))
    return result


def keys_in_store(live_server: LiveServer) -> list[KeyRecord]:
    result: list[KeyRecord] = asyncio.run(_with_store(live_server, lambda s: s.list_keys()))
    return result


def register_admin(live_server: LiveServer, name: str = "ops") -> tuple[str, str]:
    request = admin_client_request(ClientRequest(name=name), live_server.settings.issuer)

    async def work(store: Any) -> tuple[str, str]:
        record, secret = await create_client(store, request)
        return record.client_id, secret or ""

    result: tuple[str, str] = asyncio.run(_with_store(live_server, work))
    return result


def get_token(http: httpx.Client, client_id: str, secret: str, **form: str) -> str:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client_id, secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def admin(live_server: LiveServer, http: httpx.Client) -> tuple[str, dict[str, str]]:
    """An admin client's id and the headers carrying its token."""
    client_id, secret = register_admin(live_server)
    return client_id, bearer(get_token(http, client_id, secret))


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_description"]
    return body


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
        assert_challenge(response, "invalid_token")
        assert name  # the case name shows in the assertion's traceback

    rows = audit(live_server)[before:]
    assert len(rows) == len(refused)
    assert {(r.action, r.outcome, r.target) for r in rows} == {
        ("client.list", "failure", "clients")
    }
    assert all(r.detail["status"] == 401 and r.detail["error"] == "invalid_token" for r in rows)
    # Signed by one of our keys: the client is known even though the token is refused.
    by_actor = [r.actor for r in rows]
    assert by_actor[:5] == ["anonymous"] * 5
    assert by_actor[5:8] == [f"admin:{admin_id}"] * 3
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
