"""The metadata endpoints (RFC 8414 section 3, OpenID Connect Discovery 1.0 section 4).

A cacheable public document served from bytes prepared at start.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.services import services


def public_cache_headers(max_age: int) -> dict[str, str]:
    return {
        "Cache-Control": f"public, max-age={max_age}",
        "Access-Control-Allow-Origin": "*",
    }


async def metadata(request: Request) -> Response:
    """RFC 8414 section 3 / OpenID Connect Discovery 1.0 section 4."""
    found = services(request)
    return Response(
        found.discovery,
        media_type="application/json",
        headers=public_cache_headers(found.settings.jwks_max_age),
    )
