"""The token endpoint (RFC 6749 section 3.2): authenticate the client, run its grant."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import authenticated_client, one_authorization
from idp.http.forms import read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import Services, services
from idp.keyring.ring import NoSigningKey
from idp.oauth.errors import (
    InvalidRequest,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from idp.oauth.grants import GRANTS
from idp.oauth.grants.base import GrantContext


async def token(request: Request) -> Response:
    """Answer a token request, timing it and counting the tokens issued."""
    found = services(request)
    started = time.perf_counter()
    try:
        return await _token(request, found)
    finally:
        found.metrics.token_latency.observe(time.perf_counter() - started)


async def _token(request: Request, found: Services) -> Response:
    form = await read_form(request)
    authorization = one_authorization(request)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = await authenticated_client(authorization, form, found.store, found.settings.issuer)
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
    found.metrics.token_issued(grant_type, client.access_token_alg)
    return json_response(result.body(), headers=NO_STORE)
