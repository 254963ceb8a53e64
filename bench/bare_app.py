"""The ceiling: bare Starlette apps on the same stack, with none of the service's work.

``POST /token`` parses the form and signs the same access-token claims and header as the
service, with one key held in memory: no store, no client lookup, no authentication, no
middleware. ``GET /jwks.json`` answers fixed bytes (the service's own JWK Set, read from a
file at start) with the same headers the service sends.

Configured by environment (the servers build the app through :func:`create_app`):
``BENCH_ALG`` (RS256 or ES256), ``BENCH_ISSUER``, ``BENCH_CLIENT_ID``, ``BENCH_SCOPE``,
``BENCH_JWKS_FILE``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.http.responses import NO_STORE, json_bytes
from idp.keyring.material import generate_key

ACCESS_TOKEN_TTL = 600
JWKS_MAX_AGE = 300
RSA_KEY_BITS = 2048


def token_endpoint(alg: str, issuer: str, client_id: str, scope: str) -> Any:
    """A /token handler that signs an RFC 9068 access token with an in-memory key."""
    key = generate_key(alg, RSA_KEY_BITS)
    header = {"alg": alg, "kid": key.thumbprint(), "typ": "at+jwt"}

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("ascii")))
        if form.get("grant_type") != "client_credentials":
            return Response(json_bytes({"error": "unsupported_grant_type"}), 400, NO_STORE)
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": client_id,
            "aud": issuer,
            "exp": now + ACCESS_TOKEN_TTL,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
        }
        body = {
            "access_token": jwt.encode(header, claims, key, algorithms=[alg]),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": scope,
        }
        return Response(json_bytes(body), headers=NO_STORE, media_type="application/json")

    return token


def jwks_endpoint(jwks: bytes, etag: str) -> Any:
    """A /jwks.json handler answering fixed bytes with the service's headers."""
    headers = {
        "Cache-Control": f"public, max-age={JWKS_MAX_AGE}",
        "Access-Control-Allow-Origin": "*",
        "ETag": etag,
    }

    async def jwks_json(request: Request) -> Response:
        return Response(jwks, headers=headers, media_type="application/jwk-set+json")

    return jwks_json


def build_app(env: Mapping[str, str]) -> Starlette:
    """The bare app for the given ``BENCH_*`` settings."""
    jwks = Path(env["BENCH_JWKS_FILE"]).read_bytes()
    etag = '"' + hashlib.sha256(jwks).hexdigest()[:32] + '"'
    token = token_endpoint(
        env.get("BENCH_ALG", "RS256"),
        env["BENCH_ISSUER"],
        env["BENCH_CLIENT_ID"],
        env["BENCH_SCOPE"],
    )
    return Starlette(
        routes=[
            Route("/jwks.json", jwks_endpoint(jwks, etag), methods=["GET"]),
            Route("/token", token, methods=["POST"]),
        ]
    )


def create_app() -> Starlette:
    """Factory for ASGI servers: the bare app for this process's environment."""
    return build_app(os.environ)
