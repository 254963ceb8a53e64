"""What every account page needs: the signed-in browser session, a recent sign-in for
sensitive changes, and account forms with CSRF bound to the session and the browser.

HTTP plumbing for the account pages (:mod:`idp.http.account_totp`,
:mod:`idp.http.account_reauth`). An account form's state is sealed for the ``account``
purpose with the session's sid inside, and its CSRF token is derived from the seal and the
browser's binding cookie (:mod:`idp.http.sealed_forms`): a form works only when posted back
by the browser and in the session it was shown in.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import page, redirect, session_cookie
from idp.http.sealed_forms import FORGED_FORM, FormRejected, form_page, open_sealed_form
from idp.http.services import Services
from idp.sso.reauth import recently_signed_in
from idp.sso.sessions import resume_session
from idp.sso.text import N_
from idp.store.base import SessionRecord, UserRecord

ACCOUNT_PURPOSE = "account"
ACCOUNT_FORM_LIFETIME = 900
NOT_SIGNED_IN = N_("You are not signed in. Sign in on your account page, then come back.")
REAUTH_PATH = "/account/reauth"


def not_signed_in(request: Request) -> Response:
    """The page for a browser without a live session (401)."""
    context = {"title": N_("Sign in first"), "message": NOT_SIGNED_IN, "link": "/account/login"}
    return page(request, "account_message.html", context, 401)


async def signed_in(request: Request, found: Services) -> tuple[SessionRecord, UserRecord] | None:
    """The browser's live session and its user, or None."""
    return await resume_session(
        found.store, found.settings, found.clock, session_cookie(request, found.settings)
    )


def reauth_redirect(next_path: str) -> Response:
    """Send the person to confirm it is still them, then back to ``next_path``."""
    return redirect(f"{REAUTH_PATH}?next={quote(next_path, safe='/')}")


def needs_reauth(found: Services, session: SessionRecord, next_path: str) -> Response | None:
    """The re-authentication redirect when the session's sign-in is older than
    IDP_REAUTH_MAX_AGE, else None."""
    if recently_signed_in(found, session):
        return None
    return reauth_redirect(next_path)


def account_form_page(
    request: Request,
    found: Services,
    session: SessionRecord,
    template: str,
    context: Mapping[str, object],
    status: int = 200,
    extra: Mapping[str, object] | None = None,
) -> Response:
    """An account page whose forms carry a seal of the session's sid and its CSRF token."""
    document = {"sid": session.sid, **(extra or {})}
    sealed = found.sealer.seal(ACCOUNT_PURPOSE, document, found.clock() + ACCOUNT_FORM_LIFETIME)
    response = form_page(request, found, template, sealed, context, ())
    response.status_code = status
    return response


async def open_account_form(
    request: Request, found: Services, session: SessionRecord
) -> tuple[Mapping[str, str], Mapping[str, object]]:
    """A submitted account form's fields and sealed document; FormRejected unless its seal,
    CSRF token and session are right."""
    form = await open_sealed_form(request, found, ACCOUNT_PURPOSE)
    if form.document.get("sid") != session.sid:
        raise FormRejected(FORGED_FORM, 403)
    return form.fields, form.document
