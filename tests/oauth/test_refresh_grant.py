"""The refresh_token grant over real HTTP, on both stores (RFC 6749 section 6, RFC 9700 4.14).

The first token of each family is issued with ``issue_refresh_token`` directly, as the
authorization code grant does; everything after goes through ``POST /token``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from idp.config import Settings
from idp.oauth.refresh_tokens import (
    revoke_refresh_family,
    revoke_session_refresh_tokens,
    revoke_user_refresh_tokens,
)
from tests.support.server import (
    LiveServer,
    basic,
    free_port,
    register_client,
    start_server,
    with_store,
)
from tests.support.tokens import (
    AUDIENCE,
    add_user,
    assert_oauth_error,
    issue,
    verify_with_joserfc,
)


@pytest.fixture
def client(live_server: LiveServer) -> tuple[str, str]:
    return register_client(
        live_server.settings,
        "web",
        grant_types=["refresh_token"],
        scope="read write",
        audiences=[AUDIENCE],
    )


def refresh(
    http: httpx.Client, client: tuple[str, str], token: str, **extra: str
) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token, **extra},
        headers=basic(*client),
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_refresh_rotates_and_answers_a_user_access_token(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings)
    first = issue(live_server.settings, client[0], user)
    response = refresh(http, client, first)
    body = ok(response)
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "openid read write"
    assert "id_token" not in body
    assert body["refresh_token"] != first and len(body["refresh_token"]) >= 43
    token = verify_with_joserfc(http, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["sub"] == user
    assert claims["client_id"] == client[0]
    assert claims["aud"] == AUDIENCE
    assert claims["scope"] == "openid read write"
    assert claims["iss"] == live_server.url
    assert int(time.time()) - 70 <= claims["auth_time"] <= int(time.time()) - 59
    # The new token works; the first one, now two generations old, trips reuse detection.
    second = ok(refresh(http, client, body["refresh_token"]))["refresh_token"]
    assert_oauth_error(refresh(http, client, first), 400, "invalid_grant")
    assert_oauth_error(refresh(http, client, second), 400, "invalid_grant")


def test_two_tabs_refreshing_at_once_both_succeed(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings)
    first = issue(live_server.settings, client[0], user)
    tab_a = ok(refresh(http, client, first))["refresh_token"]
    tab_b = ok(refresh(http, client, first))["refresh_token"]
    assert tab_a != tab_b
    ok(refresh(http, client, tab_a))
    ok(refresh(http, client, tab_b))


def test_grace_zero_of_two_concurrent_refreshes_exactly_one_succeeds(
    settings: Settings,
) -> None:
    server = start_server(replace(settings, refresh_reuse_grace=0), free_port())
    try:
        client = register_client(server.settings, "web", grant_types=["refresh_token"])
        user = add_user(server.settings)
        for _ in range(3):
            token = issue(server.settings, client[0], user)
            barrier = threading.Barrier(2)
            statuses: list[int] = []

            def go(
                token: str = token,
                barrier: threading.Barrier = barrier,
                statuses: list[int] = statuses,
            ) -> None:
                with httpx.Client(base_url=server.url, timeout=10) as http:
                    barrier.wait()
                    statuses.append(refresh(http, client, token).status_code)

            threads = [threading.Thread(target=go) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(statuses) == [200, 400]
    finally:
        server.stop()


def test_scope_may_narrow_and_the_ceiling_stays(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings)
    token = issue(live_server.settings, client[0], user)
    narrowed = ok(refresh(http, client, token, scope="read"))
    assert narrowed["scope"] == "read"
    assert verify_with_joserfc(http, narrowed["access_token"]).claims["scope"] == "read"
    again = ok(refresh(http, client, narrowed["refresh_token"]))
    assert again["scope"] == "openid read write"


def test_widening_scope_is_refused_and_keeps_the_token(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings)
    token = issue(live_server.settings, client[0], user)
    assert_oauth_error(refresh(http, client, token, scope="read admin"), 400, "invalid_scope")
    assert_oauth_error(refresh(http, client, token, scope="bad\\scope"), 400, "invalid_scope")
    ok(refresh(http, client, token))


def test_another_clients_token_is_invalid_grant(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    other = register_client(live_server.settings, "other", grant_types=["refresh_token"])
    user = add_user(live_server.settings)
    token = issue(live_server.settings, client[0], user)
    assert_oauth_error(refresh(http, other, token), 400, "invalid_grant")
    assert_oauth_error(refresh(http, other, token, scope="admin"), 400, "invalid_grant")
    ok(refresh(http, client, token))


def test_public_client_refreshes_with_its_client_id(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, _ = register_client(
        live_server.settings, "spa", public=True, grant_types=["refresh_token"]
    )
    user = add_user(live_server.settings)
    token = issue(live_server.settings, client_id, user)
    body = ok(
        http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id},
        )
    )
    assert verify_with_joserfc(http, body["access_token"]).claims["sub"] == user


def test_expired_unknown_and_missing_tokens(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings)
    ttl = live_server.settings.refresh_token_ttl
    expired = issue(live_server.settings, client[0], user, clock=lambda: time.time() - ttl - 1)
    assert_oauth_error(refresh(http, client, expired), 400, "invalid_grant")
    assert_oauth_error(refresh(http, client, "nonsense"), 400, "invalid_grant")
    assert_oauth_error(refresh(http, client, "x" * 5000), 400, "invalid_grant")
    missing = http.post("/token", data={"grant_type": "refresh_token"}, headers=basic(*client))
    assert_oauth_error(missing, 400, "invalid_request")


def test_disabled_user_is_invalid_grant(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    user = add_user(live_server.settings, disabled=True)
    token = issue(live_server.settings, client[0], user)
    assert_oauth_error(refresh(http, client, token), 400, "invalid_grant")


def test_client_without_the_grant_is_unauthorized(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client = register_client(live_server.settings, "batch")
    user = add_user(live_server.settings)
    token = issue(live_server.settings, client[0], user)
    assert_oauth_error(refresh(http, client, token), 400, "unauthorized_client")


def test_revocation_by_family_session_and_user(
    live_server: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    settings = live_server.settings
    user = add_user(settings)
    by_family = issue(settings, client[0], user, family="fam-x")
    by_session = issue(settings, client[0], user, sid="sid-9")
    offline = issue(settings, client[0], user, sid="sid-9", offline=True)
    assert with_store(settings.database_url, lambda s: revoke_refresh_family(s, "fam-x")) == 1
    assert (
        with_store(settings.database_url, lambda s: revoke_session_refresh_tokens(s, "sid-9")) == 1
    )
    assert_oauth_error(refresh(http, client, by_family), 400, "invalid_grant")
    assert_oauth_error(refresh(http, client, by_session), 400, "invalid_grant")
    survivor = ok(refresh(http, client, offline))["refresh_token"]
    assert with_store(settings.database_url, lambda s: revoke_user_refresh_tokens(s, user)) == 2
    assert_oauth_error(refresh(http, client, survivor), 400, "invalid_grant")
