"""client_secret_jwt client authentication (RFC 7523 section 2.2 with HS256, OpenID Connect
Core 1.0 section 9) over a real server, on both stores: an assertion MACed with the client's
secret is accepted at the token, introspection, revocation and PAR endpoints, made by hand or
by authlib's ClientSecretJWT; a wrong secret, another alg, a replay, a wrong audience and the
bare secret are refused; the secret keeps working through a rotation and a key-encryption-key
rewrap, because it is kept sealed under that key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import ClientSecretJWT

from idp.admin.clients import get_client, rotate_client_secret
from idp.admin.context import AdminContext, InvalidInput
from idp.admin.keys import rewrap_keys
from idp.config import Settings
from idp.oauth.client_secret_jwt import open_client_secret
from idp.store.base import Store
from tests.support.admin_api import bearer, get_token, register_admin
from tests.support.cli import Idp
from tests.support.processes import wait_for
from tests.support.server import (
    LiveServer,
    basic,
    free_port,
    register_client,
    start_server,
    with_store,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(
    secret: str, client_id: str, audience: str, alg: str = "HS256", **overrides: Any
) -> str:
    """A JWS made by hand: ``alg`` HS256 or HS384 keyed with the secret's octets, or none."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        **overrides,
    }
    header = {"alg": alg, "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if alg == "none":
        return signing_input + "."
    mac = hmac.new(secret.encode(), signing_input.encode(), HASHES[alg]).digest()
    return f"{signing_input}.{_b64(mac)}"


def token_form(client_assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }


def token_status(base: str, secret: str, client_id: str, audience: str | None = None) -> int:
    url = f"{base}/token"
    value = assertion(secret, client_id, audience or url)
    return httpx.post(url, data=token_form(value), timeout=30).status_code


@pytest.fixture
def hmac_client(settings: Settings, live_server: LiveServer) -> tuple[str, str]:
    """A machine client authenticating with client_secret_jwt: (client_id, secret)."""
    client_id, secret = register_client(
        settings,
        "hmac",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="client_secret_jwt",
    )
    assert secret
    return client_id, secret


def test_a_hand_made_assertion_is_accepted_and_only_once(
    live_server: LiveServer, hmac_client: tuple[str, str]
) -> None:
    client_id, secret = hmac_client
    url = f"{live_server.url}/token"
    for audience in (live_server.url, url):
        value = assertion(secret, client_id, audience)
        answer = httpx.post(url, data=token_form(value), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "Bearer"
        replayed = httpx.post(url, data=token_form(value), timeout=30)
        assert replayed.status_code == 401
        assert replayed.json()["error"] == "invalid_client"


def test_authlib_client_secret_jwt_gets_tokens(
    live_server: LiveServer, hmac_client: tuple[str, str]
) -> None:
    client_id, secret = hmac_client
    url = f"{live_server.url}/token"
    with OAuth2Client(
        client_id, secret, token_endpoint_auth_method=ClientSecretJWT(url), timeout=30
    ) as client:
        assert client.fetch_token(url, grant_type="client_credentials")["token_type"] == "Bearer"
        assert client.fetch_token(url, grant_type="client_credentials")["access_token"]


def test_bad_assertions_and_the_bare_secret_are_refused(
    live_server: LiveServer, hmac_client: tuple[str, str], settings: Settings
) -> None:
    client_id, secret = hmac_client
    url = f"{live_server.url}/token"
    other, other_secret = register_client(
        settings,
        "other",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="client_secret_jwt",
    )
    cases = {
        "wrong secret": assertion(secrets.token_urlsafe(32), client_id, url),
        "another client's secret": assertion(other_secret, client_id, url),
        "HS384": assertion(secret, client_id, url, alg="HS384"),
        "none": assertion(secret, client_id, url, alg="none"),
        "wrong audience": assertion(secret, client_id, "https://elsewhere.example/token"),
        "wrong issuer": assertion(secret, client_id, url, iss=other),
        "too long-lived": assertion(secret, client_id, url, exp=int(time.time()) + 7200),
    }
    for name, value in cases.items():
        answer = httpx.post(url, data=token_form(value), timeout=30)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["error"] == "invalid_client", name
    for headers, data in (
        (basic(client_id, secret), {"grant_type": "client_credentials"}),
        ({}, {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}),
    ):
        answer = httpx.post(url, data=data, headers=headers, timeout=30)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_client"


def test_introspection_revocation_and_par_accept_hmac_assertions(
    live_server: LiveServer, settings: Settings
) -> None:
    client_id, secret = register_client(
        settings,
        "web-hmac",
        grant_types=["client_credentials", "authorization_code"],
        redirect_uris=["https://app.example/cb"],
        token_endpoint_auth_method="client_secret_jwt",
    )
    base = live_server.url
    issued = httpx.post(
        f"{base}/token", data=token_form(assertion(secret, client_id, base)), timeout=30
    )
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]

    def auth(endpoint: str) -> dict[str, str]:
        value = assertion(secret, client_id, f"{base}{endpoint}")
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value}

    introspected = httpx.post(
        f"{base}/introspect", data={"token": access, **auth("/introspect")}, timeout=30
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    pushed = httpx.post(
        f"{base}/par",
        data={
            "response_type": "code",
            "redirect_uri": "https://app.example/cb",
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            **auth("/par"),
        },
        timeout=30,
    )
    assert pushed.status_code == 201, pushed.text
    revoked = httpx.post(f"{base}/revoke", data={"token": access, **auth("/revoke")}, timeout=30)
    assert revoked.status_code == 200, revoked.text
    after = httpx.post(
        f"{base}/introspect", data={"token": access, **auth("/introspect")}, timeout=30
    )
    assert after.json() == {"active": False}


def test_rotation_reseals_the_new_secret_and_refuses_keeping_the_old(
    live_server: LiveServer, hmac_client: tuple[str, str], settings: Settings
) -> None:
    client_id, old_secret = hmac_client
    ctx_of = lambda store: AdminContext(store, settings)  # noqa: E731

    async def keep_old(store: Store) -> None:
        await rotate_client_secret(ctx_of(store), client_id, keep_old=3600)

    with pytest.raises(InvalidInput, match="client_secret_jwt"):
        with_store(settings.database_url, keep_old)

    async def rotate(store: Store) -> str:
        _, secret = await rotate_client_secret(ctx_of(store), client_id)
        return secret

    new_secret = with_store(settings.database_url, rotate)
    # The server learns of the change from the store's notification within a second.
    wait_for(lambda: token_status(live_server.url, new_secret, client_id) == 200, 10, 0.1)
    assert token_status(live_server.url, old_secret, client_id) == 401


def test_rewrap_reseals_the_secret_under_the_new_key(
    live_server: LiveServer, hmac_client: tuple[str, str], settings: Settings
) -> None:
    """After ``keys rewrap`` only the new key opens the secret: a server given the new key
    accepts the client's assertions; one still holding the old key cannot check them."""
    client_id, secret = hmac_client
    new_key = secrets.token_bytes(32)

    async def rewrap(store: Store) -> bytes | None:
        ctx = AdminContext(store, settings)
        await rewrap_keys(ctx, new_key)
        client = await get_client(ctx, client_id)
        assert open_client_secret(client, settings.key_encryption_key) is None
        actions = [e.action for e in await store.list_audit()]
        assert "client.rewrap" in actions
        return open_client_secret(client, new_key)

    assert with_store(settings.database_url, rewrap) == secret.encode()
    wait_for(lambda: token_status(live_server.url, secret, client_id) == 401, 10, 0.1)
    rekeyed = start_server(replace(settings, key_encryption_key=new_key), free_port())
    try:
        # Both servers have the one issuer: the assertion is addressed to it.
        assert token_status(rekeyed.url, secret, client_id, settings.issuer) == 200
    finally:
        rekeyed.stop()


@pytest.mark.usefixtures("database_url")
def test_cli_registers_a_client_secret_jwt_client_and_rotates_it(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "Hmac", "--grant-type", "client_credentials",
        "--token-endpoint-auth-method", "client_secret_jwt", "--json",
    ).json()  # fmt: skip
    assert created["token_endpoint_auth_method"] == "client_secret_jwt"
    assert created["client_secret"]
    assert "secret_sealed" not in created
    client_id = created["client_id"]
    migrated("clients", "rotate-secret", client_id, "--keep-old", "1h").fails(
        1, "client_secret_jwt"
    )
    rotated = migrated("clients", "rotate-secret", client_id, "--json").json()
    assert rotated["client_secret"] and rotated["client_secret"] != created["client_secret"]


def test_discovery_lists_client_secret_jwt_and_hs256(live_server: LiveServer) -> None:
    metadata = httpx.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    for endpoint in ("token", "introspection", "revocation"):
        assert "client_secret_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "HS256" in metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]


def test_admin_api_registers_and_rotates_a_client_secret_jwt_client(
    live_server: LiveServer,
) -> None:
    """Over the admin API in the server's own process: the new secret works at once, the old
    one stops, and keeping the old one is refused with a 400 naming the method."""
    admin_id, admin_secret = register_admin(live_server)
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        headers = bearer(get_token(http, admin_id, admin_secret))
        body = {
            "name": "api-hmac",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_jwt",
        }
        created = http.post("/admin/clients", json=body, headers=headers)
        assert created.status_code == 201, created.text
        client_id, old = created.json()["client_id"], created.json()["client_secret"]
        assert token_status(live_server.url, old, client_id) == 200
        kept = http.post(
            f"/admin/clients/{client_id}/secret", json={"keep_old": "1h"}, headers=headers
        )
        assert kept.status_code == 400 and "client_secret_jwt" in kept.text
        rotated = http.post(f"/admin/clients/{client_id}/secret", headers=headers)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["client_secret"]
        assert token_status(live_server.url, new, client_id) == 200
        assert token_status(live_server.url, old, client_id) == 401
