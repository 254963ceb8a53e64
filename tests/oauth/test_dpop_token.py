"""DPoP (RFC 9449) at the token endpoint, UserInfo, introspection and discovery, over real
HTTP (the Starlette path) on both stores.

Proofs are made by ``tests.support.dpop`` with ``cryptography`` directly; the bound tokens
are verified against the published JWKS with joserfc.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.support.dpop import DpopKey
from tests.support.server import LiveServer, basic, free_port, register_client, start_server
from tests.support.sso import AuthorizeParams, sign_in
from tests.support.sso import add_user as add_person
from tests.support.tokens import AUDIENCE, assert_oauth_error, verify_with_joserfc

CALLBACK = "http://127.0.0.1:8765/cb"


def token_url(server: LiveServer) -> str:
    return f"{server.url}/token"


def machine(server: LiveServer, **fields: Any) -> tuple[str, str]:
    return register_client(
        server.settings,
        "machine",
        grant_types=["client_credentials"],
        scope="read",
        audiences=[AUDIENCE],
        **fields,
    )


def client_credentials(http: httpx.Client, client: tuple[str, str], *proofs: str) -> httpx.Response:
    headers = [*basic(*client).items(), *(("DPoP", proof) for proof in proofs)]
    return http.post("/token", data={"grant_type": "client_credentials"}, headers=headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_proof_binds_the_access_token_to_its_key(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client = machine(live_server)
    key = DpopKey()
    body = ok(client_credentials(http, client, key.proof("POST", token_url(live_server))))
    assert body["token_type"] == "DPoP"
    claims = verify_with_joserfc(http, body["access_token"]).claims
    assert claims["cnf"] == {"jkt": key.jkt}
    plain = ok(client_credentials(http, client))
    assert plain["token_type"] == "Bearer"
    assert "cnf" not in verify_with_joserfc(http, plain["access_token"]).claims


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_every_advertised_algorithm_binds(
    live_server: LiveServer, http: httpx.Client, alg: str
) -> None:
    key = DpopKey(alg)
    body = ok(
        client_credentials(http, machine(live_server), key.proof("POST", token_url(live_server)))
    )
    assert verify_with_joserfc(http, body["access_token"]).claims["cnf"]["jkt"] == key.jkt


def test_a_replayed_proof_is_refused(live_server: LiveServer, http: httpx.Client) -> None:
    client = machine(live_server)
    proof = DpopKey().proof("POST", token_url(live_server))
    ok(client_credentials(http, client, proof))
    replayed = client_credentials(http, client, proof)
    assert_oauth_error(replayed, 400, "invalid_dpop_proof")
    assert "already been used" in replayed.json()["error_description"]


def test_a_proof_is_used_once_across_replicas(live_server: LiveServer) -> None:
    """Two servers on one database: what one accepted, the other refuses; of two racing
    requests with one proof exactly one succeeds."""
    other = start_server(live_server.settings, free_port())
    try:
        client = machine(live_server)
        proof = DpopKey().proof("POST", token_url(live_server))
        ok(
            httpx.post(
                f"{live_server.url}/token",
                data={"grant_type": "client_credentials"},
                headers={**basic(*client), "DPoP": proof},
            )
        )
        again = httpx.post(
            f"{other.url}/token",
            data={"grant_type": "client_credentials"},
            headers={**basic(*client), "DPoP": proof},
        )
        assert_oauth_error(again, 400, "invalid_dpop_proof")

        racing = DpopKey().proof("POST", token_url(live_server))
        statuses: list[int] = []
        start = threading.Barrier(2)

        def send(url: str) -> None:
            start.wait()
            headers = {**basic(*client), "DPoP": racing}
            answer = httpx.post(
                f"{url}/token",
                data={"grant_type": "client_credentials"},
                headers=headers,
                timeout=30,
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=send, args=(u,)) for u in (live_server.url, other.url)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(statuses) == [200, 400]
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", None), ("POST", "http://127.0.0.1:1/token"), ("POST", "https://elsewhere/token")],
)
def test_htm_and_htu_must_name_the_token_endpoint(
    live_server: LiveServer, http: httpx.Client, method: str, url: str | None
) -> None:
    proof = DpopKey().proof(method, url or token_url(live_server))
    assert_oauth_error(
        client_credentials(http, machine(live_server), proof), 400, "invalid_dpop_proof"
    )


def test_two_dpop_headers_or_a_bad_proof_are_refused(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client = machine(live_server)
    key = DpopKey()
    url = token_url(live_server)
    two = client_credentials(http, client, key.proof("POST", url), key.proof("POST", url))
    assert_oauth_error(two, 400, "invalid_dpop_proof")
    assert_oauth_error(client_credentials(http, client, "not-a-jwt"), 400, "invalid_dpop_proof")
    private = key.proof("POST", url, header={"jwk": {**key.jwk, "d": "AAAA"}})
    assert_oauth_error(client_credentials(http, client, private), 400, "invalid_dpop_proof")


def test_a_client_that_requires_dpop_is_refused_without_a_proof(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client = machine(live_server, require_dpop=True)
    refused = client_credentials(http, client)
    assert_oauth_error(refused, 400, "invalid_request")
    assert "DPoP" in refused.json()["error_description"]
    body = ok(client_credentials(http, client, DpopKey().proof("POST", token_url(live_server))))
    assert body["token_type"] == "DPoP"


def test_introspection_shows_the_binding(live_server: LiveServer, http: httpx.Client) -> None:
    client = machine(live_server)
    key = DpopKey()
    token = ok(client_credentials(http, client, key.proof("POST", token_url(live_server))))[
        "access_token"
    ]
    answer = ok(http.post("/introspect", data={"token": token}, headers=basic(*client)))
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.jkt}
    bearer = ok(client_credentials(http, client))["access_token"]
    plain = ok(http.post("/introspect", data={"token": bearer}, headers=basic(*client)))
    assert plain["token_type"] == "Bearer" and "cnf" not in plain


def test_discovery_names_the_proof_algorithms(live_server: LiveServer, http: httpx.Client) -> None:
    document = http.get("/.well-known/openid-configuration").json()
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


# -- a person's tokens: authorization code, refresh, UserInfo ------------------------------


def signed_in_code(server: LiveServer, client_id: str) -> tuple[AuthorizeParams, str]:
    request = AuthorizeParams(client_id, CALLBACK, scope="openid profile")
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        answer = sign_in(browser, request)
    return request, answer["code"]


def redeem(
    server: LiveServer,
    request: AuthorizeParams,
    code: str,
    proof: str | None,
    auth: dict[str, str] | None = None,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
    }
    if auth is None:
        form["client_id"] = request.client_id
    headers = {**(auth or {}), **({"DPoP": proof} if proof else {})}
    return httpx.post(token_url(server), data=form, headers=headers, timeout=30)


def refresh(
    server: LiveServer,
    token: str,
    proof: str | None,
    client_id: str,
    auth: dict[str, str] | None = None,
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    if auth is None:
        form["client_id"] = client_id
    headers = {**(auth or {}), **({"DPoP": proof} if proof else {})}
    return httpx.post(token_url(server), data=form, headers=headers, timeout=30)


@pytest.fixture
def person(live_server: LiveServer) -> Iterator[str]:
    add_person(live_server.settings)
    yield "alice"


def public_app(server: LiveServer) -> str:
    client_id, _ = register_client(
        server.settings,
        "spa",
        public=True,
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
    )
    return client_id


def test_public_client_tokens_are_bound_and_its_refresh_token_too(
    live_server: LiveServer, person: str
) -> None:
    app = public_app(live_server)
    key = DpopKey()
    request, code = signed_in_code(live_server, app)
    body = ok(redeem(live_server, request, code, key.proof("POST", token_url(live_server))))
    assert body["token_type"] == "DPoP"
    with httpx.Client(base_url=live_server.url) as http:
        assert verify_with_joserfc(http, body["access_token"]).claims["cnf"]["jkt"] == key.jkt
    rt = body["refresh_token"]

    # Another key, or no proof: invalid_grant, and the token is not consumed by the attempt.
    thief = DpopKey()
    stolen = refresh(live_server, rt, thief.proof("POST", token_url(live_server)), app)
    assert_oauth_error(stolen, 400, "invalid_grant")
    assert_oauth_error(refresh(live_server, rt, None, app), 400, "invalid_grant")

    renewed = ok(refresh(live_server, rt, key.proof("POST", token_url(live_server)), app))
    assert renewed["token_type"] == "DPoP"
    # The successor keeps the binding.
    later = refresh(
        live_server, renewed["refresh_token"], thief.proof("POST", token_url(live_server)), app
    )
    assert_oauth_error(later, 400, "invalid_grant")
    ok(
        refresh(
            live_server, renewed["refresh_token"], key.proof("POST", token_url(live_server)), app
        )
    )


def test_confidential_client_refresh_tokens_are_not_bound(
    live_server: LiveServer, person: str
) -> None:
    client_id, secret = register_client(
        live_server.settings,
        "web",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
    )
    auth = basic(client_id, secret)
    request, code = signed_in_code(live_server, client_id)
    first = DpopKey()
    body = ok(redeem(live_server, request, code, first.proof("POST", token_url(live_server)), auth))
    assert body["token_type"] == "DPoP"
    # RFC 9449 section 5: bound to the client's credentials, not to the key.
    other = DpopKey()
    renewed = ok(
        refresh(
            live_server,
            body["refresh_token"],
            other.proof("POST", token_url(live_server)),
            client_id,
            auth,
        )
    )
    with httpx.Client(base_url=live_server.url) as http:
        claims = verify_with_joserfc(http, renewed["access_token"]).claims
    assert claims["cnf"]["jkt"] == other.jkt
    plain = ok(refresh(live_server, renewed["refresh_token"], None, client_id, auth))
    assert plain["token_type"] == "Bearer"


def bound_user_token(server: LiveServer) -> tuple[str, DpopKey]:
    app = public_app(server)
    key = DpopKey()
    request, code = signed_in_code(server, app)
    body = ok(redeem(server, request, code, key.proof("POST", token_url(server))))
    return body["access_token"], key


def userinfo(
    server: LiveServer, authorization: str, *proofs: str, method: str = "GET"
) -> httpx.Response:
    headers = [("Authorization", authorization), *(("DPoP", p) for p in proofs)]
    return httpx.request(method, f"{server.url}/userinfo", headers=headers, timeout=30)


def dpop_refusal(response: httpx.Response, error: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge
    assert 'algs="ES256 RS256 PS256 EdDSA"' in challenge


def test_userinfo_takes_a_bound_token_with_its_proof(live_server: LiveServer, person: str) -> None:
    token, key = bound_user_token(live_server)
    url = f"{live_server.url}/userinfo"
    answer = userinfo(live_server, f"DPoP {token}", key.proof("GET", url, access_token=token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"]
    posted = userinfo(
        live_server, f"DPoP {token}", key.proof("POST", url, access_token=token), method="POST"
    )
    assert posted.status_code == 200, posted.text


def test_userinfo_refuses_a_bound_token_without_a_right_proof(
    live_server: LiveServer, person: str
) -> None:
    token, key = bound_user_token(live_server)
    url = f"{live_server.url}/userinfo"
    dpop_refusal(userinfo(live_server, f"Bearer {token}"), "invalid_token")
    dpop_refusal(userinfo(live_server, f"DPoP {token}"), "invalid_dpop_proof")
    dpop_refusal(
        userinfo(live_server, f"DPoP {token}", key.proof("GET", url)), "invalid_dpop_proof"
    )
    wrong_method = key.proof("POST", url, access_token=token)
    dpop_refusal(userinfo(live_server, f"DPoP {token}", wrong_method), "invalid_dpop_proof")
    thief = DpopKey().proof("GET", url, access_token=token)
    dpop_refusal(userinfo(live_server, f"DPoP {token}", thief), "invalid_dpop_proof")
    proof = key.proof("GET", url, access_token=token)
    assert userinfo(live_server, f"DPoP {token}", proof).status_code == 200
    dpop_refusal(userinfo(live_server, f"DPoP {token}", proof), "invalid_dpop_proof")


def test_userinfo_refuses_an_unbound_token_sent_as_dpop(
    live_server: LiveServer, person: str
) -> None:
    app = public_app(live_server)
    request, code = signed_in_code(live_server, app)
    token = ok(redeem(live_server, request, code, None))["access_token"]
    assert userinfo(live_server, f"Bearer {token}").status_code == 200
    url = f"{live_server.url}/userinfo"
    proof = DpopKey().proof("GET", url, access_token=token)
    dpop_refusal(userinfo(live_server, f"DPoP {token}", proof), "invalid_token")


# -- server nonces --------------------------------------------------------------------------


@pytest.fixture
def nonce_server(live_server: LiveServer) -> Iterator[LiveServer]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = replace(live_server.settings, issuer=issuer, dpop_require_nonce=True)
    server = start_server(settings, port)
    try:
        yield server
    finally:
        server.stop()


def test_the_nonce_flow(nonce_server: LiveServer) -> None:
    client = machine(nonce_server)
    key = DpopKey()
    url = f"{nonce_server.url}/token"
    with httpx.Client(base_url=nonce_server.url, timeout=30) as http:
        first = client_credentials(http, client, key.proof("POST", url))
        assert_oauth_error(first, 400, "use_dpop_nonce")
        nonce = first.headers["dpop-nonce"]
        stale = client_credentials(http, client, key.proof("POST", url, nonce="not-the-nonce"))
        assert_oauth_error(stale, 400, "use_dpop_nonce")
        done = client_credentials(http, client, key.proof("POST", url, nonce=nonce))
        body = ok(done)
        assert body["token_type"] == "DPoP"
        assert done.headers["dpop-nonce"]
        # Without a proof the client gets a bearer token; no nonce is asked for.
        assert ok(client_credentials(http, client))["token_type"] == "Bearer"
