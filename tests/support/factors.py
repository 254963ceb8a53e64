"""Helpers for second-factor tests: enrol a user's TOTP through the service, compute codes
with pyotp at the server's clock, and answer the second-factor page."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pyotp

from idp.clock import Clock
from idp.config import Settings
from idp.sso.factors import begin_totp, confirm_totp
from idp.store.base import Store
from tests.support.server import with_store
from tests.support.sso import hidden_inputs

MFA = "urn:idp:acr:mfa"


def enrol_totp(settings: Settings, user_id: str, clock: Clock) -> tuple[str, list[str]]:
    """Set up TOTP for a user as the account page would; its base32 secret and the recovery
    codes. The confirming code is computed for the step before ``clock()``'s, so the current
    step is still free for a sign-in."""

    async def work(store: Store) -> tuple[str, list[str]]:
        user = await store.get_user(user_id)
        assert user is not None
        enrolment = await begin_totp(store, settings, clock, user)
        assert enrolment is not None
        first = pyotp.TOTP(enrolment.secret).at(clock() - 30)
        codes = await confirm_totp(store, settings, clock, user, first)
        return enrolment.secret, codes

    return with_store(settings.database_url, work)


def code_now(secret: str, clock: Callable[[], float]) -> str:
    """The TOTP code of the server's current time step."""
    return pyotp.TOTP(secret).at(clock())


def submit_code(browser: httpx.Client, page: httpx.Response, code: str) -> httpx.Response:
    """Post the second-factor form shown in ``page``."""
    fields = hidden_inputs(page.text)
    return browser.post(
        "/login/second-factor",
        data={"request": fields["request"], "csrf": fields["csrf"], "code": code},
    )


def is_second_factor_page(page: httpx.Response) -> bool:
    return 'action="/login/second-factor"' in page.text and 'name="password"' not in page.text


def wrong_code(secret: str, clock: Callable[[], float]) -> str:
    """A 6-digit code that no time step within one of the server's current one has."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(clock() + 30 * offset) for offset in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)
