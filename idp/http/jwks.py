"""The JWK Set endpoint (RFC 7517 section 5): every published public key, with a strong ETag."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.discovery import public_cache_headers
from idp.http.services import services

JWK_SET_TYPE = "application/jwk-set+json"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison of If-None-Match against our ETag (RFC 9110 section 13.1.2)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


async def jwks(request: Request) -> Response:
    """The JWK Set (RFC 7517 section 5) of every published key, with a strong ETag."""
    found = services(request)
    found.metrics.jwks_requests.inc()
    ring = found.keys.ring
    headers = {**public_cache_headers(found.settings.jwks_max_age), "ETag": ring.jwks_etag}
    if etag_matches(request.headers.get("if-none-match"), ring.jwks_etag):
        found.metrics.jwks_not_modified.inc()
        return Response(status_code=304, headers=headers)
    return Response(ring.jwks, media_type=JWK_SET_TYPE, headers=headers)
