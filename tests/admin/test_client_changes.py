"""A serving process holds its clients in memory: every change reaches its token endpoint.

Changes made through its own admin API are applied before the API answers; changes made by
another process (the CLI, another store object) within a second (the delays are printed:
the tests wait up to 10 s, so that a loaded machine does not fail them).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from idp.store.base import Store
from tests.support.admin_api import audit
from tests.support.commands import run_idp
from tests.support.processes import wait_for
from tests.support.server import LiveServer, basic, register_client, with_store

DEADLINE = 10.0


def token_status(http: httpx.Client, client_id: str, secret: str, **form: str) -> int:
    """The status of a client_credentials request, with its error code when refused."""
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client_id, secret),
    )
    return response.status_code


def refused_with(http: httpx.Client, client_id: str, secret: str, error: str, **form: str) -> bool:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client_id, secret),
    )
    return response.status_code in (400, 401) and response.json()["error"] == error


def held(live_server: LiveServer, http: httpx.Client, client_id: str, secret: str) -> None:
    """Get tokens until the server holds this client alone in memory (it forgets every client
    when it notices the counter moved, which may be a little after the client was made)."""

    def holding() -> bool:
        assert token_status(http, client_id, secret) == 200
        return live_server.held_clients() == 1

    wait_for(holding, DEADLINE, message="client held")


def applied_within_deadline(
    live_server: LiveServer, target: str, action: str, applied: Any, what: str
) -> None:
    """Wait until ``applied()`` holds; print the delay since the change's audit row was made."""
    wait_for(applied, DEADLINE, interval=0.01, message=what)
    seen = time.time()
    (row,) = [r for r in audit(live_server) if r.target == target and r.action == action]
    print(f"\n{what}: applied {seen - row.at:.3f} s after the change (promised: under 1 s)")


def test_the_server_holds_its_clients_and_unknown_ids_leave_nothing(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings, scope="read")
    held(live_server, http, client_id, secret)
    for n in range(300):
        assert refused_with(http, f"made-up-{n}", "x", "invalid_client")
    assert live_server.held_clients() in (0, 1)  # 0: forgotten, if a change came meanwhile
    assert token_status(http, client_id, secret) == 200


def test_admin_api_changes_are_applied_before_it_answers(
    live_server: LiveServer, http: httpx.Client, admin: tuple[str, dict[str, str]]
) -> None:
    _, headers = admin
    body = {"name": "reports", "scope": "read write"}
    created = http.post("/admin/clients", json=body, headers=headers).json()
    client_id, secret = created["client_id"], created["client_secret"]
    held(live_server, http, client_id, secret)  # creating it made the server forget the rest

    patched = http.patch(f"/admin/clients/{client_id}", json={"scope": "read"}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert refused_with(http, client_id, secret, "invalid_scope", scope="write")
    assert token_status(http, client_id, secret, scope="read") == 200

    assert http.delete(f"/admin/clients/{client_id}", headers=headers).status_code == 204
    assert refused_with(http, client_id, secret, "invalid_client")


def test_changes_by_another_process_are_applied_within_a_second(
    live_server: LiveServer, http: httpx.Client, env: dict[str, str], tmp_path: Path
) -> None:
    client_id, secret = register_client(live_server.settings, scope="read write")
    held(live_server, http, client_id, secret)

    run_idp(env, tmp_path, "clients", "update", client_id, "--scope", "read")
    applied_within_deadline(
        live_server,
        client_id,
        "client.update",
        lambda: refused_with(http, client_id, secret, "invalid_scope", scope="write"),
        "scope narrowed by `idp clients update`",
    )

    new_secret = "a-new-secret-of-enough-length-for-the-test"

    async def change_secret(store: Store) -> None:
        client = await store.get_client(client_id)
        assert client is not None
        changed = replace(client, secret_hash=hashlib.sha256(new_secret.encode()).digest())
        assert await store.update_client(changed)

    started = time.time()
    with_store(live_server.settings.database_url, change_secret)
    wait_for(
        lambda: refused_with(http, client_id, secret, "invalid_client"),
        DEADLINE,
        interval=0.01,
        message="old secret refused",
    )
    print(f"\nsecret changed by another store object: applied within {time.time() - started:.3f} s")
    assert token_status(http, client_id, new_secret) == 200

    run_idp(env, tmp_path, "clients", "delete", client_id)
    applied_within_deadline(
        live_server,
        client_id,
        "client.delete",
        lambda: refused_with(http, client_id, new_secret, "invalid_client"),
        "client deleted by `idp clients delete`",
    )
