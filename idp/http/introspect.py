"""The introspection (RFC 7662) and revocation (RFC 7009) endpoints: POST forms from clients."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import authenticated_client, challenged, one_authorization
from idp.http.forms import read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import Services, services
from idp.keyring.ring import KeyRing
from idp.oauth.errors import InvalidClient, InvalidRequest
from idp.oauth.grants.base import TokenRequest
from idp.oauth.introspection import introspect as introspect_token
from idp.oauth.presented_tokens import TokenCheck
from idp.oauth.revocation import revoke as revoke_token
from idp.store.base import ClientRecord


async def _client_and_token(request: Request, found: Services) -> tuple[ClientRecord, str]:
    """Read the form, authenticate the client as /token does, and take ``token``.

    ``token_type_hint`` is accepted and ignored: the type shows in the token itself
    (RFC 7662 section 2.1 and RFC 7009 section 2.1 allow that), so an unknown or wrong
    hint changes nothing.
    """
    form: TokenRequest = await read_form(request)
    authorization = one_authorization(request)
    client = await authenticated_client(authorization, form, found.store, found.settings.issuer)
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    return client, token


def _check(found: Services, ring: KeyRing) -> TokenCheck:
    return TokenCheck(issuer=found.settings.issuer, ring=ring, clock=found.clock, store=found.store)


async def introspect(request: Request) -> Response:
    """RFC 7662 section 2: whether the token is active and, if so, what it carries.

    Only confidential clients may ask (section 2.1 requires the caller to authenticate;
    a public client cannot). The key ring is re-read if it changed, so a token of a key
    revoked a moment ago is already inactive.
    """
    found = services(request)
    client, token = await _client_and_token(request, found)
    if client.is_public:
        raise challenged(
            InvalidClient("introspection requires a confidential client"),
            found.settings.issuer,
            one_authorization(request),
        )
    ring = await found.keys.current()
    answer = await introspect_token(token, client, _check(found, ring))
    found.metrics.introspected(bool(answer["active"]))
    return json_response(answer, headers=NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009 section 2: revoke the token if it is the client's; 200 with an empty body.

    Public clients may revoke their own tokens (section 2.1: credentials are checked "in
    case of a confidential client").
    """
    found = services(request)
    client, token = await _client_and_token(request, found)
    revoked = await revoke_token(token, client, _check(found, found.keys.ring))
    found.metrics.revoked(revoked)
    return Response(b"", status_code=200, headers=NO_STORE)
