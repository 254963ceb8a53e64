"""The metadata endpoints (RFC 8414 section 3, OpenID Connect Discovery 1.0 section 4).

A cacheable public document served from bytes and headers prepared at start, as a plain
ASGI endpoint (see ``idp.http.direct``) and through RSGI (``idp.http.rsgi``).
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp.http.direct import scope_services, send_answer
from idp.http.responses import JSON_TYPE, Answer
from idp.http.services import Services


def metadata_answer(found: Services) -> Answer:
    """RFC 8414 section 3 / OpenID Connect Discovery 1.0 section 4: the prepared document."""
    return Answer(200, [*found.public_headers, ("content-type", JSON_TYPE)], found.discovery)


class MetadataEndpoint:
    """The metadata document as a plain ASGI endpoint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_answer(send, metadata_answer(scope_services(scope)))


metadata = MetadataEndpoint()
