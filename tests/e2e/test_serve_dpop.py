"""DPoP (RFC 9449) through ``idp serve``: the token endpoint answered natively over RSGI, on
both stores, with server nonces required and a client made with ``--require-dpop``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.dpop import DpopKey, claims_of
from tests.support.processes import (
    AUDIENCE,
    SCOPE,
    client_basic,
    idp_json,
    migrate,
    serving,
    wait_for,
)
from tests.support.server import free_port, make_env

pytestmark = pytest.mark.slow


def token_request(http: httpx.Client, client: dict[str, str], *proofs: str) -> httpx.Response:
    headers = [*client_basic(client).items(), *(("DPoP", proof) for proof in proofs)]
    return http.post("/token", data={"grant_type": "client_credentials"}, headers=headers)


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error: str = response.json()["error"]
    return error


def test_dpop_over_rsgi(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = make_env(database_url, port, IDP_DPOP_REQUIRE_NONCE="1")
    migrate(env, tmp_path)
    args = ["clients", "create", "--name", "api-caller", "--scope", SCOPE]
    client = idp_json([*args, "--audience", AUDIENCE, "--require-dpop"], env, tmp_path)
    assert client["require_dpop"] is True
    url = f"http://127.0.0.1:{port}"
    key = DpopKey()

    with serving(env, tmp_path, port), httpx.Client(base_url=url, timeout=10) as http:
        # Required for this client: no proof, no token.
        assert error_of(token_request(http, client)) == "invalid_request"
        # Nonces are required: the first proof is answered with one.
        first = token_request(http, client, key.proof("POST", f"{url}/token"))
        assert error_of(first) == "use_dpop_nonce"
        nonce = first.headers["dpop-nonce"]

        proof = key.proof("POST", f"{url}/token", nonce=nonce)
        issued = token_request(http, client, proof)
        assert issued.status_code == 200, issued.text
        assert issued.headers["dpop-nonce"]
        body = issued.json()
        assert body["token_type"] == "DPoP"
        assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}

        assert error_of(token_request(http, client, proof)) == "invalid_dpop_proof"
        wrong_htu = key.proof("POST", f"{url}/other", nonce=nonce)
        assert error_of(token_request(http, client, wrong_htu)) == "invalid_dpop_proof"
        two = [key.proof("POST", f"{url}/token", nonce=nonce) for _ in range(2)]
        assert error_of(token_request(http, client, *two)) == "invalid_dpop_proof"

        introspected = http.post(
            "/introspect", data={"token": body["access_token"]}, headers=client_basic(client)
        ).json()
        assert introspected["cnf"] == {"jkt": key.jkt}

        # The requirement lifted: a bearer token again.
        changed = idp_json(
            ["clients", "update", client["client_id"], "--no-require-dpop"], env, tmp_path
        )
        assert changed["require_dpop"] is False

        def bearer() -> bool:
            return token_request(http, client).status_code == 200

        wait_for(bearer, 10, message="the client change reached the server")
        assert token_request(http, client).json()["token_type"] == "Bearer"
