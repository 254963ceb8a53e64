"""Metadata and JWKS: cacheable public documents served from prepared bytes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.services import services

JWK_SET_TYPE = "application/jwk-set+json"


def _public_cache_headers(max_age: int) -> dict[str, str]:
    return {
        "Cache-Control": f"public, max-age={max_age}",
        "Access-Control-Allow-Origin": "*",
    }


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


async def metadata(request: Request) -> Response:
    """RFC 8414 section 3 / OpenID Connect Discovery 1.0 section 4."""
    found = services(request)
    return Response(
        found.discovery,
        media_type="application/json",
        headers=_public_cache_headers(found.settings.jwks_max_age),
    )


async def jwks(request: Request) -> Response:
    """The JWK Set (RFC 7517 section 5) of every published key, with a strong ETag."""
    found = services(request)
    found.metrics.jwks_requests.inc()
    ring = found.keys.ring
    headers = {**_public_cache_headers(found.settings.jwks_max_age), "ETag": ring.jwks_etag}
    if etag_matches(request.headers.get("if-none-match"), ring.jwks_etag):
        found.metrics.jwks_not_modified.inc()
        return Response(status_code=304, headers=headers)
    return Response(ring.jwks, media_type=JWK_SET_TYPE, headers=headers)
