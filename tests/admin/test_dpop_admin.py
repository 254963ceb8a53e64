"""``require_dpop`` on clients (RFC 9449 section 5.2), on both stores: ``idp clients
create|update --require-dpop`` and the admin API's client field, which the token endpoint
then enforces."""

from __future__ import annotations

import httpx

from tests.support.admin_api import register_admin
from tests.support.cli import Idp
from tests.support.dpop import DpopKey
from tests.support.server import LiveServer, basic

Admin = tuple[str, dict[str, str]]


def test_clients_require_dpop_on_create_and_update(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "phone", "--public",
        "--redirect-uri", "https://phone.example/cb", "--require-dpop", "--json",
    ).json()  # fmt: skip
    assert created["require_dpop"] is True
    client_id = created["client_id"]
    off = migrated("clients", "update", client_id, "--no-require-dpop", "--json").json()
    assert off["require_dpop"] is False
    kept = migrated("clients", "update", client_id, "--name", "phone 2", "--json").json()
    assert kept["require_dpop"] is False
    on = migrated("clients", "update", client_id, "--require-dpop", "--json").json()
    assert on["require_dpop"] is True
    assert migrated("clients", "show", client_id, "--json").json()["require_dpop"] is True


def test_admin_api_sets_require_dpop_and_the_token_endpoint_enforces_it(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    _, headers = admin
    made = http.post(
        "/admin/clients",
        json={"name": "machine", "grant_types": ["client_credentials"], "require_dpop": True},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    client = made.json()
    assert client["require_dpop"] is True
    auth = basic(client["client_id"], client["client_secret"])
    form = {"grant_type": "client_credentials"}
    refused = http.post("/token", data=form, headers=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    proof = DpopKey().proof("POST", f"{live_server.url}/token")
    bound = http.post("/token", data=form, headers={**auth, "DPoP": proof})
    assert bound.status_code == 200 and bound.json()["token_type"] == "DPoP"

    path = f"/admin/clients/{client['client_id']}"
    changed = http.patch(path, json={"require_dpop": False}, headers=headers)
    assert changed.status_code == 200 and changed.json()["require_dpop"] is False
    assert http.get(path, headers=headers).json()["require_dpop"] is False


def test_admin_api_takes_a_bound_token_only_with_its_proof(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_admin(live_server)
    key = DpopKey()
    issued = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={**basic(client_id, secret), "DPoP": key.proof("POST", f"{live_server.url}/token")},
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    url = f"{live_server.url}/admin/clients"
    proof = key.proof("GET", url, access_token=token)
    listed = http.get("/admin/clients", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert listed.status_code == 200, listed.text
    as_bearer = http.get("/admin/clients", headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert as_bearer.headers["www-authenticate"].startswith("DPoP ")
    replayed = http.get("/admin/clients", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
