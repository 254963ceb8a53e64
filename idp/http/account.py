"""The account page, GET /account, its sign-in and its forms.

The HTTP floor over :mod:`idp.sso.account`: without a live session /account shows the
login form for the account itself (POST /account/login; a passkey through
:mod:`idp.http.passkeys`). Every form of the page carries the page's sealed state (the
session's ``sid``) and a CSRF token bound to the browser (:mod:`idp.http.sealed_forms`): a
form opened in another session, or posted from another site, is refused. A change that
succeeds redirects back to the page (303) with a notice; a refused one shows the page
again with the reason; a stale sign-in (IDP_REAUTH_MAX_AGE) answers 403 and asks for a new
sign-in.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.http.html import redirect, session_cookie, set_session_cookie
from idp.http.sealed_forms import FORM_LIFETIME, FormRejected, form_page, open_sealed_form
from idp.http.services import Services, client_address, services
from idp.sso.account import (
    AccountChangeRefused,
    AccountOverview,
    AccountSignedIn,
    AccountSignIn,
    ReauthRequired,
    account_overview,
    change_password,
    remove_passkey,
    revoke_app,
    sign_in_to_account,
    sign_out_other_sessions,
    sign_out_session,
)
from idp.sso.sessions import resume_session
from idp.sso.text import N_
from idp.store.base import SessionRecord, UserRecord

ACCOUNT_LOGIN = "account-login"
ACCOUNT = "account"
NOTICES = {
    "password": N_("Your password was changed."),
    "passkey-added": N_("The passkey was added."),
    "passkey-removed": N_("The passkey was removed."),
    "session-ended": N_("That browser was signed out."),
    "sessions-ended": N_("Every other browser was signed out."),
    "app-revoked": N_("The app no longer has access to your account."),
}
REAUTH = N_("Your sign-in is too old for this change. Sign in again, then try once more.")
WRONG_SESSION = N_("This page belongs to another sign-in. Open your account page again.")

SignedIn = tuple[SessionRecord, UserRecord]
DEVICE_RETURN = re.compile(r"/device(\?user_code=[A-Za-z0-9+%-]{1,96})?")
"""The device verification page, with a user code, as a sign-in may return to it."""


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


async def signed_in(request: Request, found: Services) -> SignedIn | None:
    """The live session of this browser and its user, if any."""
    cookie = session_cookie(request, found.settings)
    return await resume_session(found.store, found.settings, found.clock, cookie)


def return_path(value: object) -> str:
    """Where the account's sign-in goes after success: the device verification page the
    person was sent from (RFC 8628 section 3.3), else the account page."""
    if isinstance(value, str) and DEVICE_RETURN.fullmatch(value):
        return value
    return "/account"


def account_login_page(
    request: Request,
    found: Services,
    *,
    error: str | None = None,
    username: str | None = None,
    status: int = 200,
    next_path: str = "/account",
) -> Response:
    """The login form for the account page itself (no authorization request); a sign-in
    goes to ``next_path`` afterwards."""
    document = {"next": next_path} if next_path != "/account" else {}
    sealed = found.sealer.seal(ACCOUNT_LOGIN, document, found.clock() + FORM_LIFETIME)
    context = {
        "client_name": None,
        "username": username,
        "error": error,
        "action": "/account/login",
        "passkey_action": "/account/login/passkey",
        "passkey_options": "/account/login/passkey/options",
        "ask_code": True,
    }
    return form_page(request, found, "login.html", sealed, context, (), status=status, scripts=True)


def account_page(
    request: Request,
    found: Services,
    overview: AccountOverview,
    session: SessionRecord,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The account page for ``overview``, its forms sealed to ``session``."""
    sealed = found.sealer.seal(ACCOUNT, {"sid": session.sid}, found.clock() + FORM_LIFETIME)
    context: dict[str, Any] = {
        "username": overview.user.username,
        "notice": notice,
        "error": error,
        "recent": overview.recent_sign_in,
        "min_length": found.settings.password_min_length,
        "passkeys": [
            {
                "id": base64.urlsafe_b64encode(p.credential_id).rstrip(b"=").decode(),
                "name": p.name,
                "created": _when(p.created_at),
                "last_used": _when(p.last_used_at) if p.last_used_at else None,
                "synced": p.backed_up,
            }
            for p in overview.passkeys
        ],
        "sessions": [
            {
                "sid": s.sid,
                "current": s.current,
                "created": _when(s.created_at),
                "last_seen": _when(s.last_seen_at),
            }
            for s in overview.sessions
        ],
        "apps": [
            {
                "client_id": a.client_id,
                "client_name": a.client_name,
                "scope": a.scope,
                "granted": _when(a.granted_at),
            }
            for a in overview.apps
        ],
    }
    return form_page(
        request, found, "account.html", sealed, context, (), status=status, scripts=True
    )


async def account(request: Request) -> Response:
    """GET /account: the page for a signed-in person, else the sign-in for it."""
    found = services(request)
    current = await signed_in(request, found)
    if current is None:
        return account_login_page(request, found)
    session, user = current
    overview = await account_overview(found, session, user)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return account_page(request, found, overview, session, notice=notice)


async def account_login_form(request: Request) -> Response:
    """GET /account/login: the account's sign-in, also to sign in again (a fresh auth_time);
    ``next`` may name the device verification page to return to."""
    next_path = return_path(request.query_params.get("next"))
    return account_login_page(request, services(request), next_path=next_path)


async def account_login(request: Request) -> Response:
    """POST /account/login: the account's sign-in with a username and password."""
    found = services(request)
    form = await open_sealed_form(request, found, ACCOUNT_LOGIN)
    outcome = await sign_in_to_account(
        found,
        username=form.fields.get("username", ""),
        password=form.fields.get("password", ""),
        code=form.fields.get("code", ""),
        client_address=client_address(request),
        session_cookie=session_cookie(request, found.settings),
    )
    next_path = return_path(form.document.get("next"))
    return render_account_sign_in(request, found, outcome, next_path)


def render_account_sign_in(
    request: Request, found: Services, outcome: AccountSignIn, next_path: str = "/account"
) -> Response:
    """To ``next_path`` (the account page) with the new session's cookie, or the form again
    with why not."""
    if isinstance(outcome, AccountSignedIn):
        moved = redirect(next_path)
        set_session_cookie(moved, found.settings, outcome.new_session.cookie_value)
        return moved
    status = 429 if outcome.retry_after else 400
    response = account_login_page(
        request,
        found,
        error=outcome.message,
        username=outcome.username,
        status=status,
        next_path=next_path,
    )
    if outcome.retry_after:
        response.headers["Retry-After"] = str(outcome.retry_after)
    return response


@dataclass(frozen=True)
class AccountForm:
    """A submitted account form that passed its checks, and who submitted it from where."""

    session: SessionRecord
    user: UserRecord
    fields: Mapping[str, str]
    client_address: str


Change = Callable[[Services, AccountForm], Awaitable[str]]
"""One change of the page: makes it (or raises) and names the notice to show after it."""


async def account_form(
    request: Request, found: Services
) -> tuple[SignedIn | None, Mapping[str, str]]:
    """An account form's fields and the session it belongs to (None: not signed in).

    FormRejected when the form's seal or CSRF token fails, or when it was made for another
    session than the browser's live one.
    """
    form = await open_sealed_form(request, found, ACCOUNT)
    current = await signed_in(request, found)
    if current is not None and form.document.get("sid") != current[0].sid:
        raise FormRejected(WRONG_SESSION, 403)
    return current, form.fields


async def run_change(request: Request, change: Change) -> Response:
    """Open an account form, make one change, and answer: back to the page with a notice,
    the page with the refusal (400), a request to sign in again (403), or the sign-in."""
    found = services(request)
    current, fields = await account_form(request, found)
    if current is None:
        return redirect("/account")
    session, user = current
    address = client_address(request)
    try:
        done = await change(found, AccountForm(session, user, fields, address))
    except ReauthRequired:
        return account_login_page(request, found, error=REAUTH, status=403)
    except AccountChangeRefused as exc:
        overview = await account_overview(found, session, user)
        return account_page(request, found, overview, session, error=exc.message, status=400)
    return redirect(f"/account?done={done}")


async def _password(found: Services, form: AccountForm) -> str:
    await change_password(
        found,
        form.session,
        form.user,
        current=form.fields.get("current", ""),
        new=form.fields.get("new", ""),
        repeated=form.fields.get("repeat", ""),
        client_address=form.client_address,
    )
    return "password"


async def _remove_passkey(found: Services, form: AccountForm) -> str:
    raw = form.fields.get("credential_id", "")
    try:
        credential_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise AccountChangeRefused(N_("There is no such passkey on your account.")) from None
    await remove_passkey(found, form.session, form.user, credential_id)
    return "passkey-removed"


async def _end_session(found: Services, form: AccountForm) -> str:
    await sign_out_session(found, form.session, form.user, form.fields.get("sid", ""))
    return "session-ended"


async def _end_others(found: Services, form: AccountForm) -> str:
    await sign_out_other_sessions(found, form.session, form.user)
    return "sessions-ended"


async def _revoke_app(found: Services, form: AccountForm) -> str:
    await revoke_app(found, form.user, form.fields.get("client_id", ""), form.client_address)
    return "app-revoked"


async def password(request: Request) -> Response:
    """POST /account/password: change the password (the current one is asked)."""
    return await run_change(request, _password)


async def passkey_remove(request: Request) -> Response:
    """POST /account/passkeys/remove: remove one of the person's passkeys."""
    return await run_change(request, _remove_passkey)


async def session_end(request: Request) -> Response:
    """POST /account/sessions/end: sign out one other browser."""
    return await run_change(request, _end_session)


async def sessions_end_others(request: Request) -> Response:
    """POST /account/sessions/end-others: sign out every other browser."""
    return await run_change(request, _end_others)


async def app_revoke(request: Request) -> Response:
    """POST /account/apps/revoke: take an app's access away."""
    return await run_change(request, _revoke_app)
