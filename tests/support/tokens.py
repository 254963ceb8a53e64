"""Token helpers for tests over HTTP: OAuth error answers, JWT checks, refresh tokens issued
straight into the store (as the authorization code grant does)."""

from __future__ import annotations

import secrets
import time

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.oauth.refresh_tokens import issue_refresh_token
from idp.store.base import UserRecord
from tests.support.server import with_store

AUDIENCE = "https://api.example.com"


def verify_with_joserfc(http: httpx.Client, token: str) -> jwt.Token:
    keys = KeySet.import_key_set(http.get("/jwks.json").json())
    return jwt.decode(token, keys, algorithms=["RS256", "ES256"])


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error
    assert "error_description" in response.json()
    assert response.headers["cache-control"] == "no-store"


SCOPE = ("openid", "read", "write")


def add_user(settings: Settings, *, disabled: bool = False) -> str:
    user_id = secrets.token_urlsafe(8)
    record = UserRecord(user_id, f"user-{user_id}", "$argon2id$x", None, None, 1.0, disabled)
    with_store(settings.database_url, lambda s: s.create_user(record))
    return user_id


def issue(
    settings: Settings,
    client_id: str,
    user_id: str,
    *,
    family: str | None = None,
    sid: str | None = "sid-1",
    offline: bool = False,
    clock: Clock = system_clock,
) -> str:
    return with_store(
        settings.database_url,
        lambda s: issue_refresh_token(
            s,
            settings,
            clock,
            client_id=client_id,
            user_id=user_id,
            scope=SCOPE,
            sid=sid,
            auth_time=time.time() - 60,
            offline=offline,
            family_id=family or secrets.token_urlsafe(8),
        ),
    )
