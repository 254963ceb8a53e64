"""The token endpoint (RFC 6749 section 3.2): authenticate the client, run its grant."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.keyring.ring import NoSigningKey
from idp.oauth.client_auth import authenticate, presented_credentials
from idp.oauth.errors import (
    InvalidClient,
    InvalidRequest,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from idp.oauth.grants import GRANTS
from idp.oauth.grants.base import GrantContext

MAX_CLIENT_ID_LENGTH = 256


async def token(request: Request) -> Response:
    found = services(request)
    form = await read_form(request)
    authorizations = request.headers.getlist("authorization")
    if len(authorizations) > 1:
        raise InvalidRequest("more than one Authorization header")
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    presented = presented_credentials(authorizations[0] if authorizations else None, form.params)
    if len(presented.client_id) > MAX_CLIENT_ID_LENGTH or "\x00" in presented.client_id:
        raise InvalidClient()
    client = authenticate(await found.store.get_client(presented.client_id), presented)
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    context = GrantContext(
        settings=found.settings, ring=found.keys.ring, clock=found.clock, store=found.store
    )
    try:
        result = await handler.handle(form, client, context)
    except NoSigningKey:
        raise TemporarilyUnavailable("no signing key is available; retry later") from None
    return json_response(result.body(), headers=NO_STORE)
