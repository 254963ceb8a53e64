"""Prometheus metrics over real HTTP on both stores, and the key-ring gauges at scrape time."""

from __future__ import annotations

import base64
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp.admin.context import AdminContext
from idp.admin.keys import rotate_keys
from idp.config import Settings
from idp.http.app import create_app
from idp.keyring.changes import ensure_key_rings
from idp.keyring.ring import KeyRingService
from idp.metrics import Metrics
from idp.store.base import Store
from tests.support.server import LiveServer, register_client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    return samples(response.text)


def issued(grant: str, alg: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("idp_tokens_issued_total", (("alg", alg), ("grant_type", grant)))


def token(http: httpx.Client, client_id: str, secret: str) -> int:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    ).status_code


def test_token_counts_and_latency_follow_token_requests(
    live_server: LiveServer, http: httpx.Client
) -> None:
    before = scrape(http)
    assert issued("client_credentials", "ES256") not in before
    assert before[("idp_token_request_duration_seconds_count", ())] == 0

    es_id, es_secret = register_client(live_server.settings, "es", access_token_alg="ES256")
    rs_id, rs_secret = register_client(live_server.settings, "rs", access_token_alg="RS256")
    assert [token(http, es_id, es_secret) for _ in range(3)] == [200, 200, 200]
    assert token(http, rs_id, rs_secret) == 200
    assert token(http, rs_id, "wrong secret") == 401

    after = scrape(http)
    assert after[issued("client_credentials", "ES256")] == 3
    assert after[issued("client_credentials", "RS256")] == 1
    assert after[("idp_token_request_duration_seconds_count", ())] == 5
    assert after[("idp_token_request_duration_seconds_sum", ())] > 0
    assert after[("idp_token_request_duration_seconds_bucket", (("le", "+Inf"),))] == 5


def test_sign_in_pages_are_timed(http: httpx.Client) -> None:
    """/authorize and /login answers are observed whatever they are (here: refusals)."""
    before = scrape(http)
    count = "idp_page_request_duration_seconds_count"
    assert before[(count, (("endpoint", "authorize"),))] == 0
    assert before[(count, (("endpoint", "login"),))] == 0
    assert http.get("/authorize", params={"client_id": "nobody"}).status_code == 400
    assert http.get("/authorize").status_code == 400
    assert http.post("/login", data={"request": "forged"}).status_code in (400, 403)
    after = scrape(http)
    assert after[(count, (("endpoint", "authorize"),))] == 2
    assert after[(count, (("endpoint", "login"),))] == 1
    assert after[("idp_page_request_duration_seconds_sum", (("endpoint", "login"),))] > 0


def test_jwks_requests_and_304s_are_counted(http: httpx.Client) -> None:
    first = http.get("/jwks.json")
    again = http.get("/jwks.json", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    stale = http.get("/jwks.json", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    values = scrape(http)
    assert values[("idp_jwks_requests_total", ())] == 3
    assert values[("idp_jwks_not_modified_total", ())] == 1


def test_key_age_and_next_rotation_per_alg_over_http(
    live_server: LiveServer, http: httpx.Client
) -> None:
    values = scrape(http)
    interval = live_server.settings.key_rotation_interval
    assert interval == 30 * 86400
    for alg in ("RS256", "ES256"):
        age = values[("idp_signing_key_age_seconds", (("alg", alg),))]
        until = values[("idp_signing_key_next_rotation_seconds", (("alg", alg),))]
        assert 0 <= age < 600
        assert until == pytest.approx(interval - age, abs=1)


@pytest.mark.anyio
async def test_key_gauges_follow_the_clock_and_rotations(store: Store, settings: Settings) -> None:
    now = [1_000_000.0]
    configured = replace(settings, key_rotation_interval=3600)
    await ensure_key_rings(store, configured, clock=lambda: now[0])
    keys = KeyRingService(store, configured.key_encryption_key)
    await keys.load()
    metrics = Metrics(keys, configured, lambda: now[0])

    now[0] += 100
    values = samples(metrics.exposition().decode())
    assert values[("idp_signing_key_age_seconds", (("alg", "ES256"),))] == 100
    assert values[("idp_signing_key_next_rotation_seconds", (("alg", "ES256"),))] == 3500

    now[0] += 4000  # overdue: the time to the scheduled rotation goes negative
    values = samples(metrics.exposition().decode())
    assert values[("idp_signing_key_next_rotation_seconds", (("alg", "RS256"),))] == -500

    await rotate_keys(AdminContext(store, configured, clock=lambda: now[0]), ["ES256"])
    await keys.refresh_if_changed()
    now[0] += 10
    values = samples(metrics.exposition().decode())
    assert values[("idp_signing_key_age_seconds", (("alg", "ES256"),))] == 10
    assert values[("idp_signing_key_age_seconds", (("alg", "RS256"),))] == 4110


def test_each_app_has_its_own_registry(settings: Settings) -> None:
    first, second = create_app(settings), create_app(settings)
    one, two = first.state.services.metrics, second.state.services.metrics
    one.token_issued("client_credentials", "ES256")
    one.token_issued("client_credentials", "ES256")
    assert samples(one.exposition().decode())[issued("client_credentials", "ES256")] == 2
    assert issued("client_credentials", "ES256") not in samples(two.exposition().decode())
