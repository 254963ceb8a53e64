"""A relying party's back-channel logout endpoint on 127.0.0.1, for tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.sso.backchannel import BACKCHANNEL_LOGOUT_EVENT
from tests.support.server import free_port


@dataclass
class Receiver:
    """A relying party's back-channel logout endpoint that checks every token it gets."""

    issuer: str
    client_id: str
    failures_first: int = 0
    hits: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    url: str = ""
    port: int = 0
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        self.hosts.append(request.headers["host"])
        if self.hits <= self.failures_first:
            return Response(status_code=500)
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = parse_qs((await request.body()).decode())
        try:
            [token] = form["logout_token"]
            claims = self.validate(token)
        except Exception as exc:
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=400)
        self.accepted.append(claims)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    def validate(self, token: str) -> dict[str, Any]:
        """Back-Channel Logout 1.0 section 2.6, steps 1 to 7."""
        keys = KeySet.import_key_set(httpx.get(f"{self.issuer}/jwks.json").json())
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        assert decoded.header["typ"] == "logout+jwt"
        claims = dict(decoded.claims)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
        assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
        assert "sid" in claims or "sub" in claims
        assert "nonce" not in claims
        return claims

    def start(self, tls: tuple[Path, Path] | None = None) -> Receiver:
        """Serve on a free 127.0.0.1 port; with ``tls`` (certificate, key files) over https."""
        port = free_port()
        app = Starlette(routes=[Route("/backchannel", self.endpoint, methods=["POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)
        self.port = port
        self.url = f"http://127.0.0.1:{port}/backchannel"
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
