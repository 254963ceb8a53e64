"""The introspection endpoint (RFC 7662): a confidential client asks whether a token is active.

Resource servers call it at high rates, so, like the token endpoint, its work
(:func:`introspect_answer`) takes the request's plain values and gives an :class:`Answer`,
served as a plain ASGI endpoint (see ``idp.http.direct``) and through RSGI
(``idp.http.rsgi``).
"""

from __future__ import annotations

from typing import Any

import orjson

from idp.http.client_auth import authenticated_client, challenged, only_authorization, token_check
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
from idp.oauth.errors import InvalidClient, InvalidRequest, OAuthError
from idp.oauth.introspection import introspect as introspect_token

_HEAD = [*header_pairs(NO_STORE), ("content-type", JSON_TYPE)]


async def introspect_answer(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    dpop_proofs: list[str],
    client_address: str = "",
) -> Answer:
    """RFC 7662 section 2: whether the token is active and, if so, what it carries.

    ``dpop_proofs`` are ignored: the caller authenticates as a client, not with a token.

    Only confidential clients may ask (section 2.1 requires the caller to authenticate;
    a public client cannot). The key ring is re-read if it changed, so a token of a key
    revoked a moment ago is already inactive. ``token_type_hint`` is accepted and ignored:
    the type shows in the token itself (section 2.1 allows that).
    """
    known = KnownClient()
    try:
        document = await _introspect(found, content_type, authorizations, body, known)
    except OAuthError as error:
        return oauth_error_answer(error, known.client_id)
    return Answer(200, _HEAD, orjson.dumps(document), known.client_id)


async def _introspect(
    found: Services,
    content_type: str | None,
    authorizations: list[str],
    body: bytes,
    known: KnownClient,
) -> dict[str, Any]:
    check_form_type(content_type)
    form = parse_form(body)
    authorization = only_authorization(authorizations)
    issuer = found.settings.issuer
    client = await authenticated_client(authorization, form, found, "/introspect")
    known.client_id = client.client_id
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    if client.is_public:
        refused = InvalidClient("introspection requires a confidential client")
        raise challenged(refused, issuer, authorization)
    ring = await found.keys.current()
    answer = await introspect_token(token, client, token_check(found, ring))
    found.metrics.introspected(bool(answer["active"]))
    return answer


introspect = ClientPostEndpoint(introspect_answer)
