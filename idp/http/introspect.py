"""The introspection endpoint (RFC 7662): a confidential client asks whether a token is active."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import challenged, client_and_token, one_authorization, token_check
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.oauth.errors import InvalidClient
from idp.oauth.introspection import introspect as introspect_token


async def introspect(request: Request) -> Response:
    """RFC 7662 section 2: whether the token is active and, if so, what it carries.

    Only confidential clients may ask (section 2.1 requires the caller to authenticate;
    a public client cannot). The key ring is re-read if it changed, so a token of a key
    revoked a moment ago is already inactive.
    """
    found = services(request)
    client, token = await client_and_token(request, found)
    if client.is_public:
        raise challenged(
            InvalidClient("introspection requires a confidential client"),
            found.settings.issuer,
            one_authorization(request),
        )
    ring = await found.keys.current()
    answer = await introspect_token(token, client, token_check(found, ring))
    found.metrics.introspected(bool(answer["active"]))
    return json_response(answer, headers=NO_STORE)
