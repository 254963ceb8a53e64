"""How the browser sees a pending second factor: the code form and the enrolment notice.

The pending sign-in (:class:`idp.sso.outcomes.PendingSecondFactor`) is sealed for the
``second_factor`` purpose, for five minutes, with a hash of this browser's binding cookie
inside, and the form's CSRF token is derived from the seal and that cookie
(:mod:`idp.http.sealed_forms`): only the browser that typed the password can finish it.
HTTP plumbing for :mod:`idp.http.signin_pages` and :mod:`idp.http.second_factor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import browser_binding, page, set_browser_binding, set_session_cookie
from idp.http.services import Services
from idp.oauth.authorization import AuthorizationRequest
from idp.sso.outcomes import EnrolmentNeeded, PendingSecondFactor, SecondFactorNeeded

SECOND_FACTOR_PURPOSE = "second_factor"
SECOND_FACTOR_LIFETIME = 300


def binding_digest(binding: str) -> str:
    """What the sealed state keeps of the browser's binding value: its SHA-256."""
    digest = hashlib.sha256(f"idp-second-factor:{binding}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def pending_document(pending: PendingSecondFactor, binding: str) -> dict[str, Any]:
    return {
        "request": pending.request.to_document(),
        "user_id": pending.user_id,
        "sid": pending.sid,
        "browser": binding_digest(binding),
    }


def pending_from(document: dict[str, Any], binding: str | None) -> PendingSecondFactor | None:
    """The pending sign-in a sealed document holds, if it was sealed for this browser."""
    kept = document.get("browser")
    if not binding or not isinstance(kept, str):
        return None
    if not hmac.compare_digest(kept.encode(), binding_digest(binding).encode()):
        return None
    user_id, sid = document.get("user_id"), document.get("sid")
    if not isinstance(user_id, str) or not (sid is None or isinstance(sid, str)):
        return None
    request = AuthorizationRequest.from_document(document["request"])
    return PendingSecondFactor(request, user_id, sid)


def second_factor_page(
    request: Request, found: Services, asked: SecondFactorNeeded, sealed: str | None = None
) -> Response:
    """The code form for a pending sign-in, with the passkey button (and its script) for a
    user who has a passkey (429 with Retry-After when throttled)."""
    binding, is_new = browser_binding(request, found.settings)
    if sealed is None:
        document = pending_document(asked.pending, binding)
        expires_at = found.clock() + SECOND_FACTOR_LIFETIME
        sealed = found.sealer.seal(SECOND_FACTOR_PURPOSE, document, expires_at)
    context = {
        "client_name": asked.client_name,
        "error": asked.error,
        "sealed": sealed,
        "csrf": found.sealer.csrf_token(binding, sealed),
        "code": asked.code,
        "passkey": asked.passkey,
    }
    status = 429 if asked.retry_after else 200
    targets = (asked.pending.request.redirect_uri,)
    locales = asked.pending.request.ui_locales
    response = page(
        request,
        "second_factor.html",
        context,
        status,
        targets,
        scripts=asked.passkey,
        ui_locales=locales,
    )
    if asked.retry_after:
        response.headers["Retry-After"] = str(asked.retry_after)
    if is_new:
        set_browser_binding(response, found.settings, binding)
    return response


def enrolment_needed_page(
    request: Request, found: Services, notice: EnrolmentNeeded, ui_locales: Sequence[str] = ()
) -> Response:
    """Say that a second factor is required and where to set one up; nothing is issued."""
    context = {"client_name": notice.client_name}
    response = page(request, "enrolment_needed.html", context, 403, ui_locales=ui_locales)
    if notice.new_session is not None:
        set_session_cookie(response, found.settings, notice.new_session.cookie_value)
    return response
