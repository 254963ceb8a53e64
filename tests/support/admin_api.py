"""Calling the admin API over real HTTP: an admin client's token, error and audit checks."""

from __future__ import annotations

from typing import Any

import httpx

from idp.admin.clients import create_client
from idp.admin.context import AdminContext
from idp.oauth.registration import ClientRequest
from idp.store.base import AuditEntry
from tests.support.server import LiveServer, basic, with_store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit(live_server: LiveServer) -> list[AuditEntry]:
    """Every audit row in the live server's store, oldest first."""
    result: list[AuditEntry] = with_store(
        live_server.settings.database_url, lambda s: s.list_audit(limit=100_000)
    )
    return result


def register_admin(live_server: LiveServer, name: str = "ops") -> tuple[str, str]:
    """An admin API client made in the store: (client_id, secret)."""

    async def work(store: Any) -> tuple[str, str]:
        ctx = AdminContext(store, live_server.settings)
        record, secret = await create_client(ctx, ClientRequest(name=name), admin=True)
        return record.client_id, secret or ""

    result: tuple[str, str] = with_store(live_server.settings.database_url, work)
    return result


def get_token(http: httpx.Client, client_id: str, secret: str, **form: str) -> str:
    """A client_credentials access token from the live server."""
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client_id, secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The answer is the admin API's standard error JSON, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_description"]
    return body
