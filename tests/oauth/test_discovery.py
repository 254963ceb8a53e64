"""Metadata, JWKS caching, health probes and the request guard, over real HTTP."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from idp.admin.context import AdminContext
from idp.admin.keys import revoke_key, rotate_keys
from idp.http.middleware import RequestGuard, TrustedProxies
from idp.store import make_store
from tests.support.server import LiveServer

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
def test_metadata_lists_what_is_implemented(
    live_server: LiveServer, http: httpx.Client, path: str
) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "public, max-age=300"
    document = response.json()
    assert document["issuer"] == live_server.url
    assert document["jwks_uri"] == f"{live_server.url}/jwks.json"
    assert document["token_endpoint"] == f"{live_server.url}/token"
    assert document["grant_types_supported"] == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert document["device_authorization_endpoint"] == f"{live_server.url}/device_authorization"
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ]
    assert document["introspection_endpoint"] == f"{live_server.url}/introspect"
    assert document["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
    ]
    assert document["revocation_endpoint"] == f"{live_server.url}/revoke"
    assert document["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ]
    assert document["authorization_endpoint"] == f"{live_server.url}/authorize"
    assert document["userinfo_endpoint"] == f"{live_server.url}/userinfo"
    assert document["end_session_endpoint"] == f"{live_server.url}/logout"
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert document["scopes_supported"] == ["openid", "profile", "email", "offline_access"]
    assert {"sub", "sid", "auth_time", "nonce", "email", "name"} <= set(
        document["claims_supported"]
    )
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True


def test_jwks_publishes_public_keys_with_strong_etag(http: httpx.Client) -> None:
    response = http.get("/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"
    etag = response.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    keys = response.json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "RS256", "RS256"]
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig" and key["kid"]
        assert {"n", "e"} <= set(key) if key["kty"] == "RSA" else {"crv", "x", "y"} <= set(key)

    cached = http.get("/jwks.json", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    assert http.get("/jwks.json", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert http.get("/jwks.json", headers={"If-None-Match": '"other"'}).status_code == 200


def test_ring_changes_reach_the_running_server(live_server: LiveServer, http: httpx.Client) -> None:
    first = http.get("/jwks.json")
    settings = live_server.settings

    async def rotate_then_revoke() -> tuple[str, str]:
        store = make_store(settings.database_url)
        await store.open()
        try:
            [rotation] = await rotate_keys(AdminContext(store, settings), ["ES256"])
            assert rotation.retired_kid is not None
            await revoke_key(AdminContext(store, settings), rotation.retired_kid)
            return rotation.active_kid, rotation.retired_kid
        finally:
            await store.close()

    active_kid, revoked_kid = asyncio.run(rotate_then_revoke())
    deadline = time.monotonic() + 5
    # Each change reaches the server on its own (at once on PostgreSQL): wait for the last.
    while True:
        response = http.get("/jwks.json", headers={"If-None-Match": first.headers["etag"]})
        if response.status_code == 200 and revoked_kid not in response.text:
            break
        assert time.monotonic() < deadline, "the key-ring change did not show within 5 s"
        time.sleep(0.1)
    kids = [k["kid"] for k in response.json()["keys"]]
    assert kids[0] == active_kid
    assert revoked_kid not in kids
    assert response.headers["etag"] != first.headers["etag"]


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "store": "ok", "keys": "ok"}
    assert ready.headers["x-request-id"]


def test_unexpected_error_is_logged_with_request_id(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret detail that must not reach the client")

    app = Starlette(routes=[Route("/x", broken)], middleware=[Middleware(RequestGuard)])

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/x")

    with caplog.at_level(logging.ERROR, logger="idp.http"):
        response = asyncio.run(call())
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error"
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["request_id"] in caplog.text


def _seen_through_proxies(peer: str, trusted: list[str], headers: dict[str, str]) -> list[str]:
    """The client address and scheme the app sees behind TrustedProxies."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([scope["client"][0], scope["scheme"]])

    networks = [ipaddress.ip_network(n) for n in trusted]
    scope: Scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def nothing() -> Message:
        return {"type": "http.request"}

    async def ignore(message: Message) -> None:
        return None

    asyncio.run(TrustedProxies(app, networks)(scope, nothing, ignore))
    return seen


def test_forwarded_headers_are_believed_only_from_trusted_proxies() -> None:
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.2", "X-Forwarded-Proto": "https"}
    assert _seen_through_proxies("10.0.0.1", ["10.0.0.0/8"], headers) == ["203.0.113.9", "https"]
    assert _seen_through_proxies("192.0.2.1", ["10.0.0.0/8"], headers) == ["192.0.2.1", "http"]
    assert _seen_through_proxies("10.0.0.1", [], headers) == ["10.0.0.1", "http"]
