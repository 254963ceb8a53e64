"""The token endpoint (RFC 6749 section 3.2): authenticate the client, run its grant.

The busiest endpoint: its work, :func:`token_answer`, takes the request's few plain
values (content type, Authorization headers, body) and gives an :class:`Answer`, served
as a plain ASGI endpoint (see ``idp.http.direct``) and through RSGI (``idp.http.rsgi``).
"""

from __future__ import annotations

import time

import orjson

from idp.http.client_auth import authenticated_client, only_authorization
from idp.http.direct import ClientPostEndpoint
from idp.http.forms import check_form_type, parse_form
from idp.http.responses import (
    JSON_TYPE,
    NO_STORE,
    Answer,
    KnownClient,
    header_pairs,
    oauth_error_answer,
)
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

_TOKEN_HEAD = [*header_pairs(NO_STORE), ("content-type", JSON_TYPE)]


async def token_answer(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    client_address: str = "",
) -> Answer:
    """Answer one token request (RFC 6749 sections 5.1 and 5.2), timed and counted."""
    started = time.perf_counter()
    known = KnownClient()
    try:
        issued = await _token(found, content_type, authorizations, body, known, client_address)
    except OAuthError as error:
        return oauth_error_answer(error, known.client_id)
    finally:
        found.metrics.token_latency.observe(time.perf_counter() - started)
    return Answer(200, _TOKEN_HEAD, issued, known.client_id)


async def _token(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    known: KnownClient,
    client_address: str,
) -> bytes:
    check_form_type(content_type)
    form = parse_form(body)
    authorization = only_authorization(authorizations)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = await authenticated_client(
        authorization,
        form,
        found.store,
        found.settings.issuer,
        found.clock(),
        keys=found.client_keys,
    )
    known.client_id = client.client_id
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    context = GrantContext(
        settings=found.settings,
        ring=found.keys.ring,
        clock=found.clock,
        store=found.store,
        events=found.events,
        client_address=client_address,
    )
    try:
        result = await handler.handle(form, client, context)
    except NoSigningKey:
        raise TemporarilyUnavailable("no signing key is available; retry later") from None
    found.metrics.token_issued(grant_type, client.access_token_alg)
    # The same bytes as json_bytes for a token response, which is ASCII (RFC 6749 section 5.1).
    return orjson.dumps(result.body())


token = ClientPostEndpoint(token_answer)
