"""The JWK Set endpoint (RFC 7517 section 5): every published public key, with a strong ETag.

A plain ASGI endpoint (see ``idp.http.direct``) and an RSGI one (``idp.http.rsgi``): the
key ring holds the document's bytes and ETag, so an answer is prepared values.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp.http.direct import first_header, scope_services, send_answer
from idp.http.responses import Answer
from idp.http.services import Services

JWK_SET_TYPE = "application/jwk-set+json"


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


def jwks_answer(found: Services, if_none_match: str | None) -> Answer:
    """The JWK Set (RFC 7517 section 5) of every published key, with a strong ETag; 304
    when If-None-Match names it (RFC 9110 section 13.1.2)."""
    found.metrics.jwks_requests.inc()
    ring = found.keys.ring
    headers = [*found.public_headers, ("etag", ring.jwks_etag)]
    if etag_matches(if_none_match, ring.jwks_etag):
        found.metrics.jwks_not_modified.inc()
        return Answer(304, headers)
    headers.append(("content-type", JWK_SET_TYPE))
    return Answer(200, headers, ring.jwks)


class JwksEndpoint:
    """The JWK Set as a plain ASGI endpoint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope_services(scope)
        await send_answer(send, jwks_answer(found, first_header(scope, b"if-none-match")))


jwks = JwksEndpoint()
