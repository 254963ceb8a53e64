"""Confirming it is still you before a sensitive change: GET and POST /account/reauth.

GET shows the password field (and a second-factor field when the account has one) for
the browser's live session, with ``next``, the account page to return to (a path under
/account only, so it cannot send the browser elsewhere); POST checks them
(:func:`idp.sso.reauth.reauthenticate`) and goes back there. Other account pages send the
person here when their sign-in is older than IDP_REAUTH_MAX_AGE
(:mod:`idp.http.account_session`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.account_session import (
    account_form_page,
    not_signed_in,
    open_account_form,
    signed_in,
)
from idp.http.html import redirect
from idp.http.services import Services, client_address, services
from idp.sso.factors import has_totp
from idp.sso.reauth import reauthenticate
from idp.store.base import SessionRecord, UserRecord

DEFAULT_NEXT = "/account/totp"


def safe_next(value: object) -> str:
    """``value`` when it is a plain path under /account, else the default page."""
    if not isinstance(value, str) or len(value) > 200:
        return DEFAULT_NEXT
    if not (value == "/account" or value.startswith("/account/")):
        return DEFAULT_NEXT
    if "//" in value or "\\" in value or any(ord(c) < 33 or ord(c) > 126 for c in value):
        return DEFAULT_NEXT
    return value


async def _form(
    request: Request,
    found: Services,
    session: SessionRecord,
    user: UserRecord,
    next_path: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        "username": user.username,
        "error": error,
        "two_factors": await has_totp(found.store, user.id),
    }
    extra = {"next": next_path}
    return account_form_page(request, found, session, "account_reauth.html", context, status, extra)


async def reauth_page(request: Request) -> Response:
    """GET /account/reauth: ask for the password (and second factor) again."""
    found = services(request)
    resumed = await signed_in(request, found)
    if resumed is None:
        return not_signed_in(request)
    session, user = resumed
    return await _form(request, found, session, user, safe_next(request.query_params.get("next")))


async def reauth(request: Request) -> Response:
    """POST /account/reauth: check them, record the sign-in, go back to the account page."""
    found = services(request)
    resumed = await signed_in(request, found)
    if resumed is None:
        return not_signed_in(request)
    session, user = resumed
    fields, document = await open_account_form(request, found, session)
    next_path = safe_next(document.get("next"))
    refused = await reauthenticate(
        found,
        session,
        user,
        password=fields.get("password", ""),
        code=fields.get("code", ""),
        client_address=client_address(request),
    )
    if refused is None:
        return redirect(next_path)
    status = 429 if refused.retry_after else 400
    response = await _form(request, found, session, user, next_path, refused.message, status)
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response
