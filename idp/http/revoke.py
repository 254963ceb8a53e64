"""The revocation endpoint (RFC 7009): a client says a token of its own is no longer needed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import client_and_token, token_check
from idp.http.responses import NO_STORE
from idp.http.services import services
from idp.oauth.revocation import revoke as revoke_token


async def revoke(request: Request) -> Response:
    """RFC 7009 section 2: revoke the token if it is the client's; 200 with an empty body.

    Public clients may revoke their own tokens (section 2.1: credentials are checked "in
    case of a confidential client").
    """
    found = services(request)
    client, token = await client_and_token(request, found)
    revoked = await revoke_token(token, client, token_check(found, found.keys.ring))
    found.metrics.revoked(revoked)
    return Response(b"", status_code=200, headers=NO_STORE)
