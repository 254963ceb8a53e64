"""Token exchange settings on clients (RFC 8693), on both stores: ``idp clients create|update
--grant-type urn:ietf:params:oauth:grant-type:token-exchange --token-exchange-subject-client``
and the admin API's fields, audited by name."""

from __future__ import annotations

import httpx

from tests.support.cli import Idp
from tests.support.server import LiveServer

Admin = tuple[str, dict[str, str]]
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_cli_sets_the_grant_and_the_subject_clients(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "orders", "--grant-type", TOKEN_EXCHANGE,
        "--token-exchange-subject-client", "front", "--token-exchange-subject-client", "app",
        "--json",
    ).json()  # fmt: skip
    assert created["grant_types"] == [TOKEN_EXCHANGE]
    assert created["token_exchange_subject_clients"] == ["front", "app"]
    client_id = created["client_id"]
    kept = migrated("clients", "update", client_id, "--name", "orders 2", "--json").json()
    assert kept["token_exchange_subject_clients"] == ["front", "app"]
    changed = migrated(
        "clients", "update", client_id, "--token-exchange-subject-client", "web", "--json"
    ).json()
    assert changed["token_exchange_subject_clients"] == ["web"]
    cleared = migrated(
        "clients", "update", client_id, "--no-token-exchange-subject-clients", "--json"
    ).json()
    assert cleared["token_exchange_subject_clients"] == []
    shown = migrated("clients", "show", client_id, "--json").json()
    assert shown["token_exchange_subject_clients"] == []
    migrated(
        "clients", "create", "--name", "spa", "--public", "--redirect-uri",
        "https://spa.example/cb", "--grant-type", TOKEN_EXCHANGE,
    ).fails(1, "confidential")  # fmt: skip


def test_admin_api_sets_the_subject_clients(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    _, headers = admin
    made = http.post(
        "/admin/clients",
        json={
            "name": "orders",
            "grant_types": [TOKEN_EXCHANGE],
            "token_exchange_subject_clients": ["front"],
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    client = made.json()
    assert client["token_exchange_subject_clients"] == ["front"]
    path = f"/admin/clients/{client['client_id']}"
    changed = http.patch(path, json={"token_exchange_subject_clients": []}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["token_exchange_subject_clients"] == []
    audit = http.get("/admin/audit", params={"action": "client.update"}, headers=headers)
    assert audit.status_code == 200, audit.text
    rows = audit.json()["entries"]
    assert any(row["detail"].get("fields") == ["token_exchange_subject_clients"] for row in rows), (
        rows
    )
