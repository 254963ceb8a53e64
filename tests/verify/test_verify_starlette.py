"""idp.verify.starlette over real HTTP: the decorator, the middleware, RFC 6750 answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from idp.verify import TokenVerifier
from idp.verify.starlette import BearerAuthMiddleware, requires_token
from tests.support.server import LiveServer, free_port
from tests.support.verify import (
    AUDIENCE,
    ISSUER,
    Signer,
    good_claims,
    idp_token,
    jwks_server,
    serving,
)


def resource_server(verifier: TokenVerifier) -> Starlette:
    """A small API: two decorated routes and a mounted app behind the middleware."""

    @requires_token(verifier, scopes=["read"], realm="api")
    async def read(request: Request) -> Response:
        token = request.state.access_token
        return JSONResponse({"sub": token.subject, "scopes": list(token.scopes)})

    @requires_token(verifier, scopes=["write"], realm="api")
    def write(request: Request) -> Response:
        on_loop_thread = threading.current_thread() is threading.main_thread()
        return JSONResponse({"sub": request.state.access_token.subject, "loop": on_loop_thread})

    async def whoami(request: Request) -> Response:
        return JSONResponse({"client_id": request.state.access_token.client_id})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.access_token.subject)
        await websocket.close()

    protected = Starlette(
        routes=[Route("/whoami", whoami), WebSocketRoute("/ws", echo)],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="api")],
    )
    return Starlette(
        routes=[
            Route("/read", read),
            Route("/write", write, methods=["POST"]),
            Mount("/mw", app=protected),
        ]
    )


@pytest.fixture(scope="module")
def rsa() -> Signer:
    return Signer.rsa("rsa-1")


@pytest.fixture
def api(rsa: Signer) -> Iterator[str]:
    with jwks_server([rsa.jwk()]) as keys:
        verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys.jwks_uri)
        with serving(resource_server(verifier)) as url:
            yield url


def token(rsa: Signer, **changes: Any) -> str:
    return rsa.token(good_claims(now=time.time(), **changes))


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def challenge_of(response: httpx.Response) -> str:
    assert response.headers["cache-control"] == "no-store"
    return response.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/read", "/mw/whoami"])
@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Token abc", "Bearerabc"])
def test_no_bearer_token_gets_a_bare_challenge(
    api: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(api + path, headers=headers)
    assert response.status_code == 401
    assert challenge_of(response) == 'Bearer realm="api"'
    assert response.content == b""


@pytest.mark.parametrize("path", ["/read", "/mw/whoami"])
@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer =abc", "Bearer a=b", "Bearer a b", "Bearer a,b", "BEARER a\tb"],
)
def test_a_malformed_authorization_header_is_invalid_request(
    api: str, path: str, authorization: str
) -> None:
    response = httpx.get(api + path, headers={"Authorization": authorization})
    assert response.status_code == 400
    assert challenge_of(response) == (
        'Bearer realm="api", error="invalid_request", '
        'error_description="the Authorization header is not a Bearer token"'
    )
    assert response.json()["error"] == "invalid_request"


def test_two_authorization_headers_are_invalid_request(api: str, rsa: Signer) -> None:
    good = token(rsa)
    response = httpx.get(
        api + "/read",
        headers=[("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")],
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in challenge_of(response)


@pytest.mark.parametrize("path", ["/read", "/mw/whoami"])
def test_a_bad_token_is_invalid_token(api: str, rsa: Signer, path: str) -> None:
    expired = token(rsa, exp=int(time.time()) - 60, iat=int(time.time()) - 700)
    response = httpx.get(api + path, headers=bearer(expired))
    assert response.status_code == 401
    assert challenge_of(response) == (
        'Bearer realm="api", error="invalid_token", error_description="the token has expired"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the token has expired",
    }
    forged = Signer(Signer.rsa("rsa-1").key, "rsa-1", "RS256")
    response = httpx.get(api + path, headers=bearer(token(forged)))
    assert response.status_code == 401
    assert 'error_description="the token signature is invalid"' in challenge_of(response)


def test_a_token_without_the_scope_is_insufficient_scope(api: str, rsa: Signer) -> None:
    response = httpx.post(api + "/write", headers=bearer(token(rsa, scope="read")))
    assert response.status_code == 403
    assert challenge_of(response) == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="the access token lacks a required scope", scope="write"'
    )
    assert response.json()["error"] == "insufficient_scope"


def test_a_good_token_reaches_the_endpoint_with_the_verified_token(api: str, rsa: Signer) -> None:
    good = token(rsa)
    response = httpx.get(api + "/read", headers={"Authorization": f"bearer  {good}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "client-1", "scopes": ["read", "write"]}
    response = httpx.post(api + "/write", headers=bearer(good))
    assert response.json() == {"sub": "client-1", "loop": False}  # sync: in the thread pool
    response = httpx.get(api + "/mw/whoami", headers=bearer(good))
    assert response.json() == {"client_id": "client-1"}


def test_websockets_need_a_token_too(api: str, rsa: Signer) -> None:
    ws_url = api.replace("http://", "ws://") + "/mw/ws"
    with pytest.raises(InvalidStatus):
        connect(ws_url, open_timeout=10).close()
    with pytest.raises(InvalidStatus):
        connect(ws_url, additional_headers=bearer("x.y.z"), open_timeout=10).close()
    with connect(ws_url, additional_headers=bearer(token(rsa)), open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "client-1"


def test_unreachable_keys_give_503_not_invalid_token(rsa: Signer) -> None:
    dead = TokenVerifier(
        ISSUER, AUDIENCE, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks.json", http_timeout=2
    )
    with serving(resource_server(dead)) as url:
        for path in ("/read", "/mw/whoami"):
            response = httpx.get(url + path, headers=bearer(token(rsa)))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "30"
            assert "www-authenticate" not in response.headers
            assert response.json()["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_of_our_idp_open_the_api(live_server: LiveServer, alg: str) -> None:
    access_token = idp_token(live_server, alg, scope="read")
    verifier = TokenVerifier(live_server.url, AUDIENCE)
    with serving(resource_server(verifier)) as url:
        response = httpx.get(url + "/read", headers=bearer(access_token))
        assert response.status_code == 200, response.text
        assert response.json()["scopes"] == ["read"]
        assert httpx.get(url + "/mw/whoami", headers=bearer(access_token)).status_code == 200
        response = httpx.post(url + "/write", headers=bearer(access_token))
        assert response.status_code == 403
