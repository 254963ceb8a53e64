"""The metadata endpoints (RFC 8414 section 3, OpenID Connect Discovery 1.0 section 4).

A cacheable public document served from bytes and headers prepared at start, as a plain
ASGI endpoint (see ``idp.http.direct``).
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp.http.direct import scope_services, send_bytes

JSON_TYPE = b"application/json"


class MetadataEndpoint:
    """RFC 8414 section 3 / OpenID Connect Discovery 1.0 section 4."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope_services(scope)
        await send_bytes(send, 200, found.public_headers, found.discovery, JSON_TYPE)


metadata = MetadataEndpoint()
