"""The JWK Set endpoint (RFC 7517 section 5): every published public key, with a strong ETag.

A plain ASGI endpoint (see ``idp.http.direct``): the key ring holds the document's bytes
and ETag, so an answer is two sends.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp.http.direct import first_header, scope_services, send_bytes

JWK_SET_TYPE = "application/jwk-set+json"
_JWK_SET_TYPE = JWK_SET_TYPE.encode("ascii")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison of If-None-Match against our ETag (RFC 9110 section 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match == etag:
        return True  # what a cache sends back: no list to split
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class JwksEndpoint:
    """The JWK Set (RFC 7517 section 5) of every published key, with a strong ETag; 304
    when If-None-Match names it (RFC 9110 section 13.1.2)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope_services(scope)
        found.metrics.jwks_requests.inc()
        ring = found.keys.ring
        headers = [*found.public_headers, (b"etag", ring.jwks_etag.encode("ascii"))]
        if etag_matches(first_header(scope, b"if-none-match"), ring.jwks_etag):
            found.metrics.jwks_not_modified.inc()
            await send_bytes(send, 304, headers, b"", None)
            return
        await send_bytes(send, 200, headers, ring.jwks, _JWK_SET_TYPE)


jwks = JwksEndpoint()
