"""The UserInfo endpoint (OpenID Connect Core 1.0 section 5.3), GET and POST."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.access_log import note
from idp.http.bearer import bearer_refusal
from idp.http.forms import FORM_TYPE, read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.oauth.bearer import active_access_token, bearer_token, require_scope
from idp.oauth.claims import user_claims
from idp.oauth.errors import OAuthError
from idp.verify.errors import InvalidToken, VerificationError


def _has_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return request.method == "POST" and content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def _error(refused: VerificationError) -> Response:
    answer = bearer_refusal(refused)
    return json_response(answer.body(), answer.status, {**NO_STORE, **answer.headers})


async def userinfo(request: Request) -> Response:
    """Claims about the token's user that its scopes release; RFC 6750 errors otherwise."""
    found = services(request)
    try:
        form = (await read_form(request)).params if _has_form(request) else None
        token = bearer_token(request.headers.getlist("authorization"), form)
        active = await active_access_token(
            token,
            found.keys.ring.verification,
            found.store,
            issuer=found.settings.issuer,
            audience=None,
            now=found.clock(),
        )
        note(request.scope, client_id=active.token.client_id, subject=active.token.subject)
        require_scope(active.token, "openid")
        if active.user is None:
            raise InvalidToken("the access token has no user")
    except VerificationError as exc:
        return _error(exc)
    except OAuthError as exc:  # a malformed form body: no usable token came with it
        return _error(InvalidToken(exc.description))
    return json_response(user_claims(active.user, active.token.scopes), headers=NO_STORE)
