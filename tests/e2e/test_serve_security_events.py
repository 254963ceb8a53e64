"""Security events through ``idp serve`` (granian's RSGI path for /token) on both stores: a
reused refresh token is reported with the address X-Forwarded-For names behind a trusted
proxy, and counted in the served /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp.config import load_settings
from tests.support.processes import migrate, serving
from tests.support.server import basic, free_port, make_env, register_client, with_store
from tests.support.tokens import AUDIENCE, add_user, issue

pytestmark = pytest.mark.slow


def reuse_count(text: str) -> float:
    wanted = {"action": "refresh_token.reuse", "outcome": "failure"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "idp_security_events_total" and sample.labels == wanted:
                return sample.value
    return 0.0


def test_refresh_token_reuse_names_the_forwarded_address(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = make_env(
        database_url, port, IDP_TRUSTED_PROXIES="127.0.0.1", IDP_REFRESH_REUSE_GRACE="0s"
    )
    migrate(env, tmp_path)
    settings = load_settings(env)
    client = register_client(
        settings, "web", grant_types=["refresh_token"], scope="read write", audiences=[AUDIENCE]
    )
    token = issue(settings, client[0], add_user(settings))
    headers = {**basic(*client), "X-Forwarded-For": "203.0.113.5"}
    form = {"grant_type": "refresh_token", "refresh_token": token}
    with (
        serving(env, tmp_path, port) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        assert http.post("/token", data=form, headers=headers).status_code == 200
        reused = http.post("/token", data=form, headers=headers)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        assert reuse_count(http.get("/metrics").text) == 1
    [row] = with_store(database_url, lambda s: s.list_audit(action="refresh_token.reuse"))
    assert row.detail["address"] == "203.0.113.5" and row.detail["client"] == client[0]
    assert row.actor == client[0] and row.outcome == "failure"
