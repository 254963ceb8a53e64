"""The device verification page, GET and POST /device and POST /device/decision (RFC 8628
section 3.3).

The HTTP floor over :mod:`idp.sso.device`. A browser without a live session is sent to
the account's sign-in (with its second factor) and back here, user code and all. GET
shows the user code field (filled in from ``verification_uri_complete``, section 3.3.1,
never approved without the person's click); POST looks the code up and shows which
application asks for which scopes; POST /device/decision approves or denies. Each form
carries the session's sid sealed and a CSRF token bound to the browser
(:mod:`idp.http.sealed_forms`).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from idp.http.account_session import signed_in
from idp.http.html import page, redirect
from idp.http.sealed_forms import (
    FORGED_FORM,
    FORM_LIFETIME,
    FormRejected,
    form_page,
    open_sealed_form,
)
from idp.http.services import Services, client_address, services
from idp.http.signin_pages import described_scopes
from idp.oauth.device import USER_CODE_LENGTH
from idp.sso.device import DeviceFound, DeviceRefused, decide_device_request, find_device_request
from idp.sso.text import N_
from idp.store.base import SessionRecord, UserRecord

DEVICE_FORM = "device"
DEVICE_DECISION = "device-decision"
NO_DECISION = N_("Choose Allow or Deny.")
MAX_TYPED = 4 * USER_CODE_LENGTH


def sign_in_first(typed: str) -> Response:
    """Send the browser to the account's sign-in, to come back to this page with its code."""
    back = "/device" + (f"?{urlencode({'user_code': typed})}" if typed else "")
    return redirect(f"/account/login?next={quote(back, safe='')}")


def code_form(
    request: Request,
    found: Services,
    session: SessionRecord,
    user: UserRecord,
    typed: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The page asking for the user code, sealed to the session."""
    sealed = found.sealer.seal(DEVICE_FORM, {"sid": session.sid}, found.clock() + FORM_LIFETIME)
    context = {"username": user.username, "user_code": typed, "error": error}
    return form_page(request, found, "device.html", sealed, context, (), status=status)


def confirm_page(
    request: Request, found: Services, session: SessionRecord, user: UserRecord, asked: DeviceFound
) -> Response:
    """The page asking the person to allow or deny the application the scopes."""
    document = {
        "sid": session.sid,
        "device": asked.device.id,
        "client_id": asked.client.client_id,
        "scope": list(asked.device.scope),
    }
    sealed = found.sealer.seal(DEVICE_DECISION, document, found.clock() + FORM_LIFETIME)
    context = {
        "client_name": asked.client.name,
        "username": user.username,
        "scopes": described_scopes(found, asked.device.scope),
    }
    return form_page(request, found, "device_confirm.html", sealed, context, ())


def refused_form(
    request: Request,
    found: Services,
    session: SessionRecord,
    user: UserRecord,
    typed: str,
    refused: DeviceRefused,
) -> Response:
    """The code form again with why not: 429 with Retry-After when throttled, else 400."""
    status = 429 if refused.retry_after else 400
    response = code_form(request, found, session, user, typed, error=refused.message, status=status)
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


async def device_page(request: Request) -> Response:
    """GET /device: the user code field, for a signed-in person."""
    found = services(request)
    typed = request.query_params.get("user_code", "")[:MAX_TYPED]
    current = await signed_in(request, found)
    if current is None:
        return sign_in_first(typed)
    session, user = current
    return code_form(request, found, session, user, typed)


async def device_code(request: Request) -> Response:
    """POST /device: look the typed code up (throttled); show what it asks, or why not."""
    found = services(request)
    form = await open_sealed_form(request, found, DEVICE_FORM)
    current = await signed_in(request, found)
    typed = form.fields.get("user_code", "")[:MAX_TYPED]
    if current is None:
        return sign_in_first(typed)
    session, user = current
    if form.document.get("sid") != session.sid:
        raise FormRejected(FORGED_FORM, 403)
    asked = await find_device_request(found, session, user, typed, client_address(request))
    if isinstance(asked, DeviceRefused):
        return refused_form(request, found, session, user, typed, asked)
    return confirm_page(request, found, session, user, asked)


async def device_decision(request: Request) -> Response:
    """POST /device/decision: allow or deny the device, once; say what happened."""
    found = services(request)
    form = await open_sealed_form(request, found, DEVICE_DECISION)
    current = await signed_in(request, found)
    if current is None:
        return sign_in_first("")
    session, user = current
    document = form.document
    if document.get("sid") != session.sid:
        raise FormRejected(FORGED_FORM, 403)
    decision = form.fields.get("decision")
    if decision not in ("allow", "deny"):
        return code_form(request, found, session, user, "", error=NO_DECISION, status=400)
    refused = await decide_device_request(
        found,
        session,
        user,
        str(document.get("device", "")),
        approve=decision == "allow",
        client_id=str(document.get("client_id", "")),
        scope=tuple(str(s) for s in document.get("scope", ())),
        client_address=client_address(request),
    )
    if refused is not None:
        return code_form(request, found, session, user, "", error=refused.message, status=400)
    context = {"approved": decision == "allow"}
    return page(request, "device_done.html", context)
