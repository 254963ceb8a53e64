"""Before measuring: make sure both sides answer 200 and issue comparable tokens."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

CLAIMS = {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}
TIMEOUT = 10
TOKEN_BODY = "grant_type=client_credentials"


def fetch(url: str, basic: str | None = None, body: str = TOKEN_BODY) -> bytes:
    """GET ``url``, or POST ``body`` (a client_credentials request) to it with ``basic``.

    Anything but a 200 raises.
    """
    request = urllib.request.Request(url)  # noqa: S310
    if basic is not None:
        request = urllib.request.Request(  # noqa: S310
            url,
            data=body.encode(),
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        answer: bytes = response.read()
        return answer


def _token(url: str, basic: str, body: str = TOKEN_BODY) -> str:
    document = json.loads(fetch(url, basic, body))
    if document.get("token_type") != "Bearer":
        raise RuntimeError(f"{url}: not a Bearer token response: {document}")
    token: str = document["access_token"]
    return token


def check_service_token(url: str, basic: str, alg: str, jwks: bytes, body: str = TOKEN_BODY) -> str:
    """Fetch a token from a server (``body`` the request) and verify it against its JWKS."""
    token = _token(url, basic, body)
    decoded = jwt.decode(token, KeySet.import_key_set(json.loads(jwks)), algorithms=[alg])
    _check_shape(url, decoded.header, set(decoded.claims), alg)
    return token


def check_bare_token(url: str, basic: str, alg: str) -> str:
    """Fetch a token from the bare app and check its header and claim names."""
    token = _token(url, basic)
    compact = extract_compact(token.encode())
    _check_shape(url, compact.protected, set(json.loads(compact.payload)), alg)
    return token


def _check_shape(url: str, header: dict[str, Any], claims: set[str], alg: str) -> None:
    if header.get("alg") != alg or header.get("typ") != "at+jwt" or not header.get("kid"):
        raise RuntimeError(f"{url}: unexpected token header {header}")
    if claims != CLAIMS:
        raise RuntimeError(f"{url}: token claims {sorted(claims)}, expected {sorted(CLAIMS)}")
