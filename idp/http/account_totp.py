"""The authenticator-app pages: GET and POST /account/totp, POST /account/totp/remove and
POST /account/recovery-codes.

GET shows a new (pending) TOTP secret as an inline SVG QR code made on the server (no
script) and as text, with a form for the first code; POST confirms it, turns two-step
verification on and shows the ten recovery codes once. With TOTP on, the page offers new
recovery codes (shown once) and turning it off. Every page needs the browser's signed-in
session and a sign-in within IDP_REAUTH_MAX_AGE (:mod:`idp.http.account_session`); every
form carries a CSRF token. The HTTP floor over :mod:`idp.sso.factors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import segno
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from idp.http.account_session import (
    account_form_page,
    needs_reauth,
    not_signed_in,
    open_account_form,
    signed_in,
)
from idp.http.services import Services, services
from idp.sso.factors import (
    FactorError,
    TotpEnrolment,
    begin_totp,
    confirm_totp,
    factor_status,
    regenerate_recovery_codes,
    remove_second_factors,
)
from idp.sso.text import N_
from idp.store.base import AuditEntry, SessionRecord, UserRecord

TOTP_PATH = "/account/totp"


def qr_svg(uri: str) -> Markup:
    """The otpauth:// URI as an inline SVG QR code (ISO/IEC 18004, error correction M)."""
    code = segno.make(uri, error="m")
    return Markup(code.svg_inline(scale=4, border=4, omitsize=True, title="QR code"))  # noqa: S704


async def _page(
    request: Request,
    found: Services,
    session: SessionRecord,
    user: UserRecord,
    *,
    error: str | None = None,
    notice: str | None = None,
    codes: list[str] | None = None,
    status: int = 200,
) -> Response:
    """The page as the account stands: enrolment, TOTP on, or fresh recovery codes."""
    enrolment: TotpEnrolment | None = None
    if codes is None:
        enrolment = await begin_totp(found.store, found.settings, found.clock, user)
    state = await factor_status(found.store, user)
    context = {
        "username": user.username,
        "error": error,
        "notice": notice,
        "codes": codes,
        "enrolment": enrolment,
        "qr": qr_svg(enrolment.uri) if enrolment else "",
        "codes_left": state.recovery_codes_left,
    }
    return account_form_page(request, found, session, "account_totp.html", context, status)


async def totp_page(request: Request) -> Response:
    """GET /account/totp: set up an authenticator app, or manage the one set up."""
    found = services(request)
    resumed = await signed_in(request, found)
    if resumed is None:
        return not_signed_in(request)
    session, user = resumed
    return needs_reauth(found, session, TOTP_PATH) or await _page(request, found, session, user)


Opened: TypeAlias = tuple[Services, SessionRecord, UserRecord, Mapping[str, str]]


async def _open_form(request: Request) -> Opened | Response:
    """A submitted TOTP form of a signed-in browser that signed in recently enough, or the
    response that sends it to sign in (again)."""
    found = services(request)
    resumed = await signed_in(request, found)
    if resumed is None:
        return not_signed_in(request)
    session, user = resumed
    fields, _ = await open_account_form(request, found, session)
    if (redirect := needs_reauth(found, session, TOTP_PATH)) is not None:
        return redirect
    return found, session, user, fields


async def confirm(request: Request) -> Response:
    """POST /account/totp: turn TOTP on with the app's first code; show recovery codes once."""
    opened = await _open_form(request)
    if isinstance(opened, Response):
        return opened
    found, session, user, fields = opened
    try:
        codes = await confirm_totp(
            found.store, found.settings, found.clock, user, fields.get("code", ""), session.id
        )
    except FactorError as exc:
        return await _page(request, found, session, user, error=exc.args[0], status=400)
    notice = N_("Two-step verification is on.")
    return await _page(request, found, session, user, notice=notice, codes=codes)


async def new_recovery_codes(request: Request) -> Response:
    """POST /account/recovery-codes: replace the recovery codes; show the new ones once."""
    opened = await _open_form(request)
    if isinstance(opened, Response):
        return opened
    found, session, user, _ = opened
    try:
        codes = await regenerate_recovery_codes(found.store, found.clock, user)
    except FactorError as exc:
        return await _page(request, found, session, user, error=exc.args[0], status=400)
    notice = N_("New recovery codes: the old ones no longer work.")
    return await _page(request, found, session, user, notice=notice, codes=codes)


async def remove(request: Request) -> Response:
    """POST /account/totp/remove: turn two-step verification off (TOTP and recovery codes)."""
    opened = await _open_form(request)
    if isinstance(opened, Response):
        return opened
    found, session, user, _ = opened
    audit = AuditEntry(found.clock(), f"user:{user.id}", "mfa.totp.remove", user.id)
    await remove_second_factors(found.store, user.id, audit)
    notice = N_("Two-step verification is off. You can set it up again below.")
    return await _page(request, found, session, user, notice=notice)
