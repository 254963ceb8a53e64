"""The UserInfo endpoint (OpenID Connect Core 1.0 section 5.3), GET and POST.

A DPoP-bound access token is taken only with ``Authorization: DPoP`` and a proof of its key
for this request (RFC 9449 section 7, :mod:`idp.oauth.dpop_resource`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.access_log import note
from idp.http.bearer import bearer_refusal
from idp.http.forms import FORM_TYPE, read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.oauth.bearer import DPOP, active_access_token, presented_token, require_scope
from idp.oauth.claims import user_claims
from idp.oauth.dpop_resource import check_token_binding
from idp.oauth.errors import OAuthError
from idp.verify.errors import InvalidToken, VerificationError


def _has_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return request.method == "POST" and content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def _error(refused: VerificationError, dpop: bool) -> Response:
    answer = bearer_refusal(refused, dpop=dpop)
    return json_response(answer.body(), answer.status, {**NO_STORE, **answer.headers})


async def userinfo(request: Request) -> Response:
    """Claims about the token's user that its scopes release; RFC 6750 (and RFC 9449
    section 7.1) errors otherwise."""
    found = services(request)
    scheme: str | None = None
    try:
        form = (await read_form(request)).params if _has_form(request) else None
        scheme, token = presented_token(request.headers.getlist("authorization"), form)
        now = found.clock()
        active = await active_access_token(
            token,
            found.keys.ring.verification,
            found.store,
            issuer=found.settings.issuer,
            audience=None,
            now=now,
        )
        note(request.scope, client_id=active.token.client_id, subject=active.token.subject)
        await check_token_binding(
            active.token,
            token,
            scheme,
            request.headers.getlist("dpop"),
            found.store,
            found.dpop,
            method=request.method,
            url=f"{found.settings.issuer}/userinfo",
            now=now,
        )
        require_scope(active.token, "openid")
        if active.user is None:
            raise InvalidToken("the access token has no user")
    except VerificationError as exc:
        return _error(exc, scheme == DPOP)
    except OAuthError as exc:  # a malformed form body: no usable token came with it
        return _error(InvalidToken(exc.description), scheme == DPOP)
    return json_response(user_claims(active.user, active.token.scopes), headers=NO_STORE)
