"""Request objects (RFC 9101) by value at /authorize and pushed to /par, over a real server on
both stores: signed by a key the client registered, their claims are the request."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.config import Settings
from tests.support.server import register_client
from tests.support.sso import PASSWORD, AuthorizeParams, World, query_of, redeem, submit_login

JAR_CB = "http://127.0.0.1:8765/jar/cb"


def b64json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def public_jwks(key: ECKey, kid: str) -> str:
    return json.dumps({"keys": [{**key.as_dict(private=False), "kid": kid, "alg": "ES256"}]})


@pytest.fixture
def signer(world: World, settings: Settings) -> tuple[str, ECKey]:
    """A public client that registered an ES256 key to sign its request objects with."""
    key = ECKey.generate_key("P-256", private=True)
    client_id, _ = register_client(
        settings,
        "jar",
        public=True,
        redirect_uris=[JAR_CB],
        grant_types=["authorization_code"],
        jwks=public_jwks(key, "jar-1"),
    )
    return client_id, key


def request_object(
    key: ECKey, client_id: str, issuer: str, request: AuthorizeParams, **overrides: Any
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
        **request.params(),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"alg": "ES256", "kid": "jar-1", "typ": "oauth-authz-req+jwt"}
    return jwt.encode(header, claims, key)


def test_a_signed_request_object_is_the_request(world: World, signer: tuple[str, ECKey]) -> None:
    """By value: its claims are the request; parameters beside it are ignored; the code it
    leads to redeems and the ID token carries its nonce."""
    client_id, key = signer
    request = AuthorizeParams(client_id, JAR_CB, scope="openid")
    value = request_object(key, client_id, world.url, request)
    url = "/authorize?" + urlencode(
        {"client_id": client_id, "request": value, "state": "not-this", "scope": "openid email"}
    )
    with world.browser() as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    answer = query_of(done.headers["location"])
    assert done.headers["location"].startswith(JAR_CB + "?")
    assert answer["state"] == request.state
    tokens = redeem(world.url, request, answer["code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "openid"


def test_bad_request_objects_get_an_error_page_never_a_redirect(
    world: World, signer: tuple[str, ECKey], settings: Settings
) -> None:
    client_id, key = signer
    request = AuthorizeParams(client_id, JAR_CB, scope="openid")
    stranger = ECKey.generate_key("P-256", private=True)
    now = int(time.time())
    unsigned_claims = {"iss": client_id, "aud": world.url, "exp": now + 60, **request.params()}
    unsigned = f"{b64json({'alg': 'none'})}.{b64json(unsigned_claims)}."
    cases = {
        "another key": request_object(stranger, client_id, world.url, request),
        "unsigned": unsigned,
        "wrong audience": request_object(key, client_id, "https://elsewhere.example", request),
        "wrong issuer": request_object(key, client_id, world.url, request, iss="someone"),
        "expired": request_object(key, client_id, world.url, request, iat=now - 600, exp=now - 60),
        "no exp": request_object(key, client_id, world.url, request, exp=None),
        "too long-lived": request_object(key, client_id, world.url, request, exp=now + 7200),
        "nested": request_object(key, client_id, world.url, request, request_uri="urn:x"),
        "not a JWT": "not-a-jwt",
    }
    with world.browser() as browser:
        for name, value in cases.items():
            url = "/authorize?" + urlencode({"client_id": client_id, "request": value})
            page = browser.get(url)
            assert page.status_code == 400, (name, page.status_code)
            assert "location" not in page.headers, name
            assert "invalid_request_object" in page.text, name
        # A client without registered keys cannot use request objects.
        plain = AuthorizeParams(world.web, "http://127.0.0.1:8765/cb")
        keyless = request_object(key, world.web, world.url, plain)
        page = browser.get("/authorize?" + urlencode({"client_id": world.web, "request": keyless}))
        assert page.status_code == 400 and "location" not in page.headers


def test_a_pushed_request_object(world: World, signer: tuple[str, ECKey]) -> None:
    """RFC 9126 section 3: the push carries the request object; /par checks it and keeps the
    request it holds; a bad one is a JSON invalid_request_object."""
    client_id, key = signer
    request = AuthorizeParams(client_id, JAR_CB, scope="openid")
    value = request_object(key, client_id, world.url, request)
    pushed = httpx.post(
        f"{world.url}/par", data={"client_id": client_id, "request": value}, timeout=30
    )
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    with world.browser() as browser:
        query = urlencode({"client_id": client_id, "request_uri": request_uri})
        page = browser.get("/authorize?" + query)
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303
    assert query_of(done.headers["location"])["state"] == request.state

    stranger = ECKey.generate_key("P-256", private=True)
    bad = request_object(stranger, client_id, world.url, request)
    refused = httpx.post(
        f"{world.url}/par", data={"client_id": client_id, "request": bad}, timeout=30
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request_object"


def test_discovery_says_request_objects_are_supported(world: World) -> None:
    metadata = httpx.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["request_parameter_supported"] is True
    assert metadata["request_object_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
    assert metadata["request_uri_parameter_supported"] is False
