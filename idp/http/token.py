"""The token endpoint (RFC 6749 section 3.2): authenticate the client, run its grant.

A plain ASGI endpoint (see ``idp.http.direct``): it is the busiest one, so it reads the
form and the Authorization header straight from the request and sends prepared headers.
"""

from __future__ import annotations

import time

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from idp.http.access_log import note
from idp.http.client_auth import authenticated_client, only_authorization
from idp.http.direct import (
    ClientGone,
    first_header,
    header_values,
    raw_headers,
    read_body,
    scope_services,
    send_bytes,
)
from idp.http.forms import check_form_type, parse_form
from idp.http.responses import NO_STORE, oauth_error_response
from idp.http.services import Services
from idp.keyring.ring import NoSigningKey
from idp.oauth.errors import (
    InvalidRequest,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from idp.oauth.grants import GRANTS
from idp.oauth.grants.base import GrantContext

JSON_TYPE = b"application/json"
_NO_STORE = raw_headers(NO_STORE)


class TokenEndpoint:
    """Answer a token request, timing it and counting the tokens issued."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope_services(scope)
        started = time.perf_counter()
        refusal: Response | None
        try:
            body = await _token(scope, receive, found)
        except OAuthError as error:
            refusal = oauth_error_response(error)
        except ClientGone:
            return
        else:
            refusal = None
        finally:
            found.metrics.token_latency.observe(time.perf_counter() - started)
        if refusal is not None:
            await refusal(scope, receive, send)
        else:
            await send_bytes(send, 200, _NO_STORE, body, JSON_TYPE)


async def _token(scope: Scope, receive: Receive, found: Services) -> bytes:
    check_form_type(first_header(scope, b"content-type"))
    form = parse_form(await read_body(receive))
    authorization = only_authorization(header_values(scope, b"authorization"))
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = await authenticated_client(
        authorization, form, found.store, found.settings.issuer, found.clock()
    )
    note(scope, client_id=client.client_id)
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
    # The same bytes as json_bytes for a token response, which is ASCII (RFC 6749 section 5.1).
    return orjson.dumps(result.body())


token = TokenEndpoint()
