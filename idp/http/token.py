"""The token endpoint (RFC 6749 section 3.2): authenticate the client, run its grant.

The busiest endpoint: its work, :func:`token_answer`, takes the request's few plain
values (content type, Authorization headers, body, DPoP headers) and gives an
:class:`Answer`, served as a plain ASGI endpoint (see ``idp.http.direct``) and through RSGI
(``idp.http.rsgi``).
"""

from __future__ import annotations

import time
from dataclasses import replace

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
from idp.oauth.dpop import DpopProof
from idp.oauth.dpop_proofs import accepted_proof
from idp.oauth.errors import (
    InvalidRequest,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from idp.oauth.grants import GRANTS
from idp.oauth.grants.base import GrantContext
from idp.store.base import ClientRecord

DPOP_TOKEN_TYPE = "DPoP"
"""The token_type of a DPoP-bound access token (RFC 9449 section 5)."""
_TOKEN_HEAD = [*header_pairs(NO_STORE), ("content-type", JSON_TYPE)]


async def token_answer(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    dpop_proofs: list[str],
    client_address: str = "",
) -> Answer:
    """Answer one token request (RFC 6749 sections 5.1 and 5.2), timed and counted.

    ``dpop_proofs`` are the request's ``DPoP`` headers (RFC 9449 section 5). While server
    nonces are required, a successful answer carries the current one (section 8.2).
    """
    started = time.perf_counter()
    known = KnownClient()
    try:
        issued = await _token(
            found, content_type, authorizations, body, dpop_proofs, known, client_address
        )
    except OAuthError as error:
        return oauth_error_answer(error, known.client_id)
    finally:
        found.metrics.token_latency.observe(time.perf_counter() - started)
    nonces = found.dpop.nonces
    head = (
        _TOKEN_HEAD
        if nonces is None
        else [*_TOKEN_HEAD, ("dpop-nonce", nonces.current(found.clock()))]
    )
    return Answer(200, head, issued, known.client_id)


async def token_proof(
    found: Services, client: ClientRecord, dpop_proofs: list[str]
) -> DpopProof | None:
    """The request's DPoP proof for the token endpoint, accepted once (RFC 9449 section 5).

    Its ``htu`` must be the token endpoint as discovery names it. A client registered to
    require DPoP (``dpop_bound_access_tokens``, section 5.2) is refused without a proof:
    invalid_request, as for any required part a request lacks (RFC 6749 section 5.2).
    """
    if not dpop_proofs:  # the common case: a bearer token, decided without more work
        if client.require_dpop:
            raise InvalidRequest("this client must send a DPoP proof with every token request")
        return None
    proof = await accepted_proof(
        dpop_proofs,
        found.store,
        found.dpop,
        method="POST",
        url=f"{found.settings.issuer}/token",
        now=found.clock(),
        nonce_required=True,
    )
    return proof


async def _token(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    dpop_proofs: list[str],
    known: KnownClient,
    client_address: str,
) -> bytes:
    check_form_type(content_type)
    form = parse_form(body)
    authorization = only_authorization(authorizations)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = await authenticated_client(authorization, form, found)
    known.client_id = client.client_id
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    proof = await token_proof(found, client, dpop_proofs)
    context = GrantContext(
        settings=found.settings,
        ring=found.keys.ring,
        clock=found.clock,
        store=found.store,
        events=found.events,
        client_address=client_address,
        dpop_jkt=proof.jkt if proof is not None else None,
    )
    try:
        result = await handler.handle(form, client, context)
    except NoSigningKey:
        raise TemporarilyUnavailable("no signing key is available; retry later") from None
    if proof is not None:
        result = replace(result, token_type=DPOP_TOKEN_TYPE)
    found.metrics.token_issued(grant_type, client.access_token_alg)
    # The same bytes as json_bytes for a token response, which is ASCII (RFC 6749 section 5.1).
    return orjson.dumps(result.body())


token = ClientPostEndpoint(token_answer)
