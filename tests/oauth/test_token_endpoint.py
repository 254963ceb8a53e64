"""The token endpoint over real HTTP, on both stores: client_credentials and every error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import jwt as pyjwt
import pytest

from tests.support.processes import wait_for
from tests.support.server import LiveServer, basic, register_client
from tests.support.tokens import AUDIENCE, assert_oauth_error, verify_with_joserfc


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_client_credentials_token_is_an_rfc9068_jwt(
    live_server: LiveServer, http: httpx.Client, alg: str
) -> None:
    client_id, secret = register_client(
        live_server.settings, scope="read write", audiences=[AUDIENCE], access_token_alg=alg
    )
    before = int(time.time())
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "read write"

    token = verify_with_joserfc(http, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == alg
    claims = token.claims
    assert claims["iss"] == live_server.url
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["aud"] == AUDIENCE
    assert claims["scope"] == "read write"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 600
    assert len(claims["jti"]) >= 16

    # A second, independent implementation reading the served JWKS over HTTP.
    signing_key = pyjwt.PyJWKClient(f"{live_server.url}/jwks.json").get_signing_key_from_jwt(
        body["access_token"]
    )
    decoded = pyjwt.decode(
        body["access_token"],
        signing_key.key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=live_server.url,
    )
    assert decoded["jti"] == claims["jti"]


def test_client_secret_post_and_narrowed_scope(live_server: LiveServer, http: httpx.Client) -> None:
    client_id, secret = register_client(
        live_server.settings,
        scope="read write admin",
        token_endpoint_auth_method="client_secret_post",
    )
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "write read",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "write read"
    claims = verify_with_joserfc(http, response.json()["access_token"]).claims
    assert claims["scope"] == "write read"
    # No audience registered and none requested: the issuer itself.
    assert claims["aud"] == live_server.url


def test_secret_with_reserved_characters_in_basic_is_form_decoded(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    assert (
        http.post(
            "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
        ).status_code
        == 200
    )


def test_resource_indicators(live_server: LiveServer, http: httpx.Client) -> None:
    other = "https://other.example.com"
    client_id, secret = register_client(live_server.settings, audiences=[AUDIENCE, other])
    auth = basic(client_id, secret)
    one = http.post(
        "/token", data={"grant_type": "client_credentials", "resource": other}, headers=auth
    )
    assert verify_with_joserfc(http, one.json()["access_token"]).claims["aud"] == other
    both = http.post(
        "/token",
        content=f"grant_type=client_credentials&resource={quote(AUDIENCE)}&resource={quote(other)}",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert verify_with_joserfc(http, both.json()["access_token"]).claims["aud"] == [AUDIENCE, other]
    default = http.post("/token", data={"grant_type": "client_credentials"}, headers=auth)
    assert verify_with_joserfc(http, default.json()["access_token"]).claims["aud"] == AUDIENCE
    refused = http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": "https://evil.example"},
        headers=auth,
    )
    assert_oauth_error(refused, 400, "invalid_target")


def test_scope_outside_the_clients_is_invalid_scope(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings, scope="read")
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "read admin"},
        headers=basic(client_id, secret),
    )
    assert_oauth_error(response, 400, "invalid_scope")


def test_every_failed_client_authentication_is_invalid_client(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    post_id, post_secret = register_client(
        live_server.settings, name="poster", token_endpoint_auth_method="client_secret_post"
    )
    grant = {"grant_type": "client_credentials"}
    attempts = [
        http.post("/token", data=grant, headers=basic(client_id, secret + "x")),
        http.post("/token", data=grant, headers=basic("no-such-client", secret)),
        http.post("/token", data=grant),
        http.post("/token", data=grant, headers={"Authorization": "Basic !!!notbase64"}),
        http.post("/token", data=grant, headers={"Authorization": "Bearer abc"}),
        # The method must be the one the client registered.
        http.post("/token", data={**grant, "client_id": client_id, "client_secret": secret}),
        http.post("/token", data=grant, headers=basic(post_id, post_secret)),
        # A client id alone is not authentication for a confidential client.
        http.post("/token", data={**grant, "client_id": client_id}),
        http.post("/token", data={**grant, "client_id": "x" * 300, "client_secret": "y"}),
    ]
    for response in attempts:
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")


def test_invalid_client_challenge_carries_the_error_when_basic_was_tried(
    live_server: LiveServer, http: httpx.Client
) -> None:
    """RFC 6749 section 5.2 at /token, /introspect and /revoke: realm is the issuer; a
    client that tried HTTP Basic finds error and error_description in the challenge."""
    client_id, secret = register_client(live_server.settings)
    public_id, _ = register_client(
        live_server.settings,
        name="spa",
        public=True,
        redirect_uris=["https://spa.example/cb"],
        grant_types=["authorization_code"],
    )
    realm = f'Basic realm="{live_server.settings.issuer}"'
    forms = {
        "/token": {"grant_type": "client_credentials"},
        "/introspect": {"token": "t"},
        "/revoke": {"token": "t"},
    }
    for path, form in forms.items():
        for headers in (basic(client_id, secret + "x"), basic("nobody", secret)):
            wrong = http.post(path, data=form, headers=headers)
            assert_oauth_error(wrong, 401, "invalid_client")
            assert wrong.headers["www-authenticate"] == (
                f'{realm}, error="invalid_client", '
                f'error_description="{wrong.json()["error_description"]}"'
            ), path
        bare = http.post(path, data=form)
        assert_oauth_error(bare, 401, "invalid_client")
        assert bare.headers["www-authenticate"] == realm, path
    public = http.post("/introspect", data={"token": "t", "client_id": public_id})
    assert_oauth_error(public, 401, "invalid_client")
    assert public.headers["www-authenticate"] == realm


def test_two_authentication_methods_at_once_is_invalid_request(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_secret": secret},
        headers=basic(client_id, secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_malformed_requests_are_invalid_request(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    auth = basic(client_id, secret)
    form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
    attempts = [
        http.post("/token", data={}, headers=auth),
        http.post("/token", data={"grant_type": ""}, headers=auth),
        http.post("/token", content="grant_type=client_credentials&grant_type=x", headers=form),
        http.post("/token", json={"grant_type": "client_credentials"}, headers=auth),
        http.post("/token", content=b"grant_type=%ff%fe", headers=form),
        http.post("/token", content=b"grant_type=client_credentials&scope=\xff", headers=form),
        http.post("/token", content="grant_type=client_credentials%00", headers=form),
    ]
    for response in attempts:
        assert_oauth_error(response, 400, "invalid_request")


def test_repeated_authorization_header_is_invalid_request(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    request = http.build_request(
        "POST",
        "/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )
    request.headers = httpx.Headers(
        [
            *request.headers.multi_items(),
            ("Authorization", basic(client_id, secret)["Authorization"]),
        ]
    )
    assert_oauth_error(http.send(request), 400, "invalid_request")


def test_unknown_grant_type_is_unsupported(live_server: LiveServer, http: httpx.Client) -> None:
    client_id, secret = register_client(live_server.settings)
    response = http.post(
        "/token", data={"grant_type": "password"}, headers=basic(client_id, secret)
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_client_without_the_grant_is_unauthorized(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(
        live_server.settings,
        grant_types=["authorization_code"],
        redirect_uris=["https://app.example/cb"],
    )
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert_oauth_error(response, 400, "unauthorized_client")


def test_wrong_method_and_path_and_size(live_server: LiveServer, http: httpx.Client) -> None:
    wrong_method = http.get("/token")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "method_not_allowed"
    missing = http.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    large = http.post(
        "/token",
        content=b"grant_type=client_credentials&scope=" + b"a" * (65 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(large, 413, "invalid_request")


def test_chunked_body_over_the_limit_is_413(live_server: LiveServer, http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_credentials&scope="
        for _ in range(80):
            yield b"a" * 1024

    response = http.post(
        "/token",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 413, "invalid_request")


def test_deleted_client_can_no_longer_get_tokens(
    live_server: LiveServer, http: httpx.Client
) -> None:
    import asyncio

    from idp.store import make_store

    client_id, secret = register_client(live_server.settings)
    auth = basic(client_id, secret)
    assert http.post("/token", data={"grant_type": "client_credentials"}, headers=auth).is_success

    async def delete() -> None:
        store = make_store(live_server.settings.database_url)
        await store.open()
        try:
            assert await store.delete_client(client_id)
        finally:
            await store.close()

    asyncio.run(delete())

    # Deleted by another process: the server notices within a second (waited for up to 10 s).
    def refused() -> httpx.Response | None:
        response = http.post("/token", data={"grant_type": "client_credentials"}, headers=auth)
        return response if response.status_code != 200 else None

    response = wait_for(refused, 10.0, message="deleted client refused")
    assert_oauth_error(response, 401, "invalid_client")
