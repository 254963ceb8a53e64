"""Rotating a client's secret without downtime: ``idp clients rotate-secret`` and
``POST /admin/clients/{client_id}/secret``, on both stores, against a real token endpoint.

Time is moved with the server's injectable clock to end the overlap; a rotation made in the
server's own process is seen at once (its client cache is forgotten in the change)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from idp.config import Settings
from idp.oauth.client_auth import hash_client_secret
from tests.support.admin_api import audit, bearer, get_token, register_admin
from tests.support.cli import Idp
from tests.support.processes import wait_for
from tests.support.server import LiveServer, basic, register_client, start_server, with_store
from tests.support.sso import MovableClock

DAY = 86400


@pytest.fixture
def clock() -> MovableClock:
    moved = MovableClock()
    moved.freeze()
    return moved


@pytest.fixture
def server(settings: Settings, port: int, clock: MovableClock) -> Iterator[LiveServer]:
    running = start_server(settings, port, clock)
    try:
        yield running
    finally:
        running.stop()


def token_status(http: httpx.Client, client_id: str, secret: str) -> int:
    answer = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    return answer.status_code


def rotate(http: httpx.Client, token: str, client_id: str, **body: str) -> dict[str, Any]:
    answer = http.post(
        f"/admin/clients/{client_id}/secret", json=body or None, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    document: dict[str, Any] = answer.json()
    return document


def test_api_rotation_keeps_the_old_secret_for_the_overlap_only(
    server: LiveServer, settings: Settings, clock: MovableClock
) -> None:
    admin_id, admin_secret = register_admin(server)
    client_id, old = register_client(settings, name="reports")
    assert old
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = get_token(http, admin_id, admin_secret)
        assert token_status(http, client_id, old) == 200  # now held in the client cache
        rotated = rotate(http, token, client_id, keep_old="24h")
        new = rotated["client_secret"]
        assert rotated["client_id"] == client_id and new != old
        assert rotated["previous_secret_expires_at"].endswith("Z")
        assert token_status(http, client_id, new) == 200
        assert token_status(http, client_id, old) == 200
        stored = with_store(settings.database_url, lambda store: store.get_client(client_id))
        assert stored.secret_hash == hash_client_secret(new)
        assert stored.previous_secret_hash == hash_client_secret(old)
        assert stored.previous_secret_expires_at == pytest.approx(clock() + DAY)
        clock.advance(DAY - 1)
        assert token_status(http, client_id, old) == 200
        clock.advance(2)
        assert token_status(http, client_id, old) == 401
        assert token_status(http, client_id, new) == 200

        # Without an overlap the secret just replaced stops at once, here too.
        token = get_token(http, admin_id, admin_secret)
        again = rotate(http, token, client_id)
        assert again["previous_secret_expires_at"] is None
        assert token_status(http, client_id, new) == 401
        assert token_status(http, client_id, again["client_secret"]) == 200

        refused = http.post(
            f"/admin/clients/{client_id}/secret", json={"keep_old": "31d"}, headers=bearer(token)
        )
        assert refused.status_code == 400, refused.text
        missing = http.post("/admin/clients/nope/secret", headers=bearer(token))
        assert missing.status_code == 404
    rows = [row for row in audit(server) if row.action == "client.rotate_secret"]
    assert [(r.target, r.outcome, dict(r.detail)) for r in rows[:2]] == [
        (client_id, "success", {"keep_old_seconds": DAY}),
        (client_id, "success", {"keep_old_seconds": 0}),
    ]
    assert all(r.actor == f"admin:{admin_id}" for r in rows[:2])
    text = json.dumps([str(r) for r in audit(server)])
    for secret in (old, new, again["client_secret"]):
        assert secret not in text


def test_cli_rotation_prints_the_secret_once_and_the_server_follows(
    server: LiveServer, settings: Settings, env: dict[str, str], cwd: Path
) -> None:
    migrated = Idp(env, cwd)  # the server's own settings, key-encryption key included
    client_id, old = register_client(settings, name="batch")
    assert old
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert token_status(http, client_id, old) == 200
        done = migrated("clients", "rotate-secret", client_id, "--keep-old", "1h").ok()
        lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
        new = lines["client_secret"]
        assert "the old secret works until " in done.stdout
        assert "shown only this once" in done.stdout
        wait_for(lambda: token_status(http, client_id, new) == 200, 10, message="new secret")
        assert token_status(http, client_id, old) == 200

        document = migrated("clients", "rotate-secret", client_id, "--json").json()
        assert document["client_id"] == client_id
        assert document["previous_secret_expires_at"] is None
        wait_for(
            lambda: token_status(http, client_id, new) == 401, 10, message="old secret refused"
        )
        assert token_status(http, client_id, document["client_secret"]) == 200
    shown = migrated("clients", "show", client_id).ok().stdout
    assert new not in shown and document["client_secret"] not in shown
    migrated("clients", "rotate-secret", client_id, "--keep-old", "soon").fails(2, "--keep-old")
    migrated("clients", "rotate-secret", "nope").fails(1, "no client with client_id 'nope'")
    public_id, _ = register_client(
        settings,
        name="spa",
        public=True,
        redirect_uris=["https://spa.example/cb"],
        grant_types=["authorization_code"],
    )
    migrated("clients", "rotate-secret", public_id).fails(1, "public")
