"""The UserInfo endpoint (OpenID Connect Core 1.0 section 5.3), GET and POST."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.forms import FORM_TYPE, read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.oauth.bearer import MissingToken, bearer_token, challenge, verify_access_token
from idp.oauth.claims import user_claims
from idp.oauth.errors import InsufficientScope, InvalidToken, OAuthError
from idp.oauth.scopes import parse_scope


def _has_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return request.method == "POST" and content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def _error(exc: OAuthError, **extra: str) -> Response:
    headers = {**NO_STORE, "WWW-Authenticate": challenge(exc.error, exc.description, **extra)}
    return json_response(exc.body(), exc.status, headers)


async def userinfo(request: Request) -> Response:
    """Claims about the token's user that its scopes release; RFC 6750 errors otherwise."""
    found = services(request)
    try:
        form = (await read_form(request)).params if _has_form(request) else None
        token = bearer_token(request.headers.getlist("authorization"), form)
    except MissingToken:
        return json_response(
            {"error": "invalid_token", "error_description": "no access token"},
            401,
            {**NO_STORE, "WWW-Authenticate": challenge()},
        )
    except OAuthError as exc:
        return _error(exc)
    try:
        claims = verify_access_token(found.keys.ring, found.settings.issuer, token, found.clock())
        scope = parse_scope(str(claims.get("scope", "")))
        if "openid" not in scope:
            raise InsufficientScope("the access token lacks the openid scope")
        user = await found.store.get_user(claims["sub"])
        if user is None or user.disabled:
            raise InvalidToken("the access token's user cannot sign in")
    except InsufficientScope as exc:
        return _error(exc, scope="openid")
    except OAuthError as exc:
        return _error(InvalidToken(exc.description))
    return json_response(user_claims(user, scope), headers=NO_STORE)
