"""The ceiling: bare Starlette apps on the same stack, with none of the service's work.

``POST /token`` parses the form and signs the same access-token claims and header as the
service, with one key held in memory: no store, no client lookup, no authentication, no
middleware. ``GET /jwks.json`` answers fixed bytes (the service's own JWK Set, read from a
file at start) with the same headers the service sends, and 304 with no body when
If-None-Match names its ETag (RFC 9110 section 13.1.2, the service's own comparison).
``GET /.well-known/openid-configuration`` answers the service's discovery document, read
from a file at start, with the service's headers (only when ``BENCH_DISCOVERY_FILE`` is set).

Configured by environment (the servers build the app through :func:`create_app`):
``BENCH_ALG`` (RS256 or ES256), ``BENCH_ISSUER``, ``BENCH_CLIENT_ID``, ``BENCH_SCOPE``,
``BENCH_JWKS_FILE``, ``BENCH_DISCOVERY_FILE`` (optional).
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

from idp.http.jwks import etag_matches
from idp.http.responses import NO_STORE, json_bytes
from idp.keyring.material import generate_key

ACCESS_TOKEN_TTL = 600
JWKS_MAX_AGE = 300
RSA_KEY_BITS = 2048
DISCOVERY_PATH = "/.well-known/openid-configuration"


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


PUBLIC_HEADERS = {
    "Cache-Control": f"public, max-age={JWKS_MAX_AGE}",
    "Access-Control-Allow-Origin": "*",
}


def jwks_endpoint(jwks: bytes, etag: str) -> Any:
    """A /jwks.json handler answering fixed bytes (or 304) with the service's headers."""
    headers = {**PUBLIC_HEADERS, "ETag": etag}

    async def jwks_json(request: Request) -> Response:
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(jwks, headers=headers, media_type="application/jwk-set+json")

    return jwks_json


def discovery_endpoint(document: bytes) -> Any:
    """A discovery handler answering fixed bytes with the service's headers."""

    async def metadata(request: Request) -> Response:
        return Response(document, headers=PUBLIC_HEADERS, media_type="application/json")

    return metadata


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
    routes = [
        Route("/jwks.json", jwks_endpoint(jwks, etag), methods=["GET"]),
        Route("/token", token, methods=["POST"]),
    ]
    discovery_file = env.get("BENCH_DISCOVERY_FILE")
    if discovery_file:
        document = Path(discovery_file).read_bytes()
        routes.append(Route(DISCOVERY_PATH, discovery_endpoint(document), methods=["GET"]))
    return Starlette(routes=routes)


def create_app() -> Starlette:
    """Factory for ASGI servers: the bare app for this process's environment."""
    return build_app(os.environ)
