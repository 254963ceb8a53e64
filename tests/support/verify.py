"""Helpers for the verifier tests: keys, hand-made tokens, a counting JWKS server, a clock.

The JWKS server is a real Starlette app under uvicorn on 127.0.0.1, in a thread with its own
event loop, so the verifier under test talks to it over real sockets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.support.clocks import T0
from tests.support.server import LiveServer, free_port, register_client, start_uvicorn

ISSUER = "https://idp.example.com"
AUDIENCE = "https://api.example.com"
START = T0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


@dataclass
class Signer:
    """A private key, its kid and alg, and its public JWK as a JWKS would list it."""

    key: RSAKey | ECKey
    kid: str
    alg: str

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> Signer:
        return cls(RSAKey.generate_key(bits, private=True), kid, "RS256")

    @classmethod
    def ec(cls, kid: str) -> Signer:
        return cls(ECKey.generate_key("P-256", private=True), kid, "ES256")

    def jwk(self, **extra: Any) -> dict[str, Any]:
        members = dict(self.key.as_dict(private=False))
        members.update({"kid": self.kid, "alg": self.alg, "use": "sig", **extra})
        return members

    def token(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        """A token this key really signed; ``header`` adds to or overrides the usual one."""
        full_header = {"alg": self.alg, "typ": "at+jwt", "kid": self.kid, **header}
        full_header = {name: value for name, value in full_header.items() if value is not None}
        payload = claims if claims is not None else good_claims()
        # Signed by hand: joserfc would refuse to produce some of the hostile headers.
        signing_input = f"{b64json(full_header)}.{b64json(payload)}"
        signature = JWSRegistry.algorithms[self.alg].sign(signing_input.encode(), self.key)
        return f"{signing_input}.{b64(signature)}"


def good_claims(now: float = START, **changes: Any) -> dict[str, Any]:
    """RFC 9068 claims valid at ``now``; a change to None removes the claim."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "client-1",
        "aud": AUDIENCE,
        "exp": int(now) + 600,
        "iat": int(now),
        "jti": "jti-1",
        "client_id": "client-1",
        "scope": "read write",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


@dataclass
class JwksServer:
    """Serves discovery and a JWK Set, counts requests per path, fails or stalls on demand."""

    keys: list[dict[str, Any]]
    issuer: str = ISSUER
    max_age: int | None = 300
    cache_control: str | None = None
    failing: bool = False
    delay: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.hits["/jwks.json"] += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failing:
                return Response("down", status_code=503)
            headers = {}
            if self.cache_control is not None:
                headers["Cache-Control"] = self.cache_control
            elif self.max_age is not None:
                headers["Cache-Control"] = f"public, max-age={self.max_age}"
            return JSONResponse({"keys": self.keys}, headers=headers)

        async def discovery(request: Request) -> Response:
            self.hits["discovery"] += 1
            if self.failing:
                return Response("down", status_code=503)
            return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.url}/jwks.json"})

        async def anything(request: Request) -> Response:
            self.hits["other"] += 1
            return JSONResponse({"keys": self.keys})

        return Starlette(
            routes=[
                Route("/jwks.json", jwks),
                Route("/.well-known/openid-configuration", discovery),
                Route("/{rest:path}", anything),
            ]
        )

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks.json"


@contextmanager
def serving(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (on ``port``, else a free one); yield its
    base URL."""
    port = free_port() if port is None else port
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server, thread = start_uvicorn(config)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def jwks_server(keys: list[dict[str, Any]], **options: Any) -> Iterator[JwksServer]:
    """A running JwksServer with these keys."""
    server = JwksServer(keys=keys, **options)
    with serving(server.app()) as url:
        server.url = url
        yield server


def idp_token(live_server: LiveServer, alg: str, scope: str = "read write") -> str:
    """A client_credentials token from the IdP, for a client registered just now."""
    client_id, secret = register_client(
        live_server.settings,
        name=f"service-{secrets.token_hex(4)}",
        scope=scope,
        audiences=[AUDIENCE],
        access_token_alg=alg,
    )
    return client_token(live_server, client_id, secret)


def client_token(live_server: LiveServer, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{live_server.url}/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
