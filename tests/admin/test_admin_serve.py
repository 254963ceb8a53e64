"""The admin API and /metrics through a real ``idp serve`` (granian) on both stores."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import idp_json, migrate, serving
from tests.support.server import free_port, make_env

pytestmark = pytest.mark.slow


def test_admin_api_and_metrics_under_idp_serve(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = make_env(database_url, port)
    migrate(env, tmp_path)
    admin = idp_json(["clients", "create", "--admin", "--name", "ops", "--json"], env, tmp_path)
    with (
        serving(env, tmp_path, port) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        issued = http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=(admin["client_id"], admin["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}

        assert http.get("/admin/keys").status_code == 401
        rotated = http.post("/admin/keys/rotate", json={"alg": "RS256"}, headers=headers)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()[0]["active_kid"] in http.get("/jwks.json").text
        assert http.get("/admin/openapi.json").json()["openapi"] == "3.1.0"

        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert 'idp_tokens_issued_total{alg="RS256",grant_type="client_credentials"} 1.0' in (
            metrics.text
        )
        assert 'idp_signing_key_age_seconds{alg="RS256"}' in metrics.text

    documents = idp_json(["audit", "list", "--json"], env, tmp_path)
    actor = f"admin:{admin['client_id']}"
    assert {"key.retire", "key.activate", "key.create"} <= {
        d["action"] for d in documents if d["actor"] == actor
    }
    assert ("anonymous", "key.list", "failure") in {
        (d["actor"], d["action"], d["outcome"]) for d in documents
    }
