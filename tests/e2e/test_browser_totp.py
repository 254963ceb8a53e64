"""End to end: Debian's headless Chromium sets up an authenticator app on /account/totp
(QR code as inline SVG, no script), then signs in with a TOTP code computed by pyotp, and
with a recovery code; on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from idp.config import Settings
from tests.support.browser import ARGS, CHROMIUM
from tests.support.relying_party import client_app
from tests.support.server import register_client
from tests.support.sso import PASSWORD, AuthorizeParams, World, query_of, redeem, verify_jwt

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium (started after anything that runs its own event loop)."""
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def _registered(settings: Settings, app_url: str) -> Iterator[tuple[str, Browser]]:
    """The app registered as a public client, then the browser."""
    client_id, _ = register_client(
        settings,
        "browser app",
        public=True,
        redirect_uris=[f"{app_url}/cb"],
        grant_types=["authorization_code"],
    )
    with chromium() as browser:
        yield client_id, browser


def _sign_in_with_password(page: Page, world: World, authorization: AuthorizeParams) -> None:
    page.goto(world.url + authorization.url())
    assert page.title() == "Sign in"
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_chromium_sets_up_totp_and_signs_in_with_a_code_and_a_recovery_code(
    world: World, settings: Settings, request: pytest.FixtureRequest
) -> None:
    world.clock.freeze()
    console: list[str] = []
    with client_app() as (app_url, reached), _registered(settings, app_url) as (client_id, browser):
        pages: list[Page] = []

        def new_page() -> Page:
            page = browser.new_context().new_page()
            page.on("console", lambda message: console.append(message.text))
            pages.append(page)
            return page

        try:
            # Password only, then the account page: QR code, key, first code, recovery codes.
            page = new_page()
            with page.expect_navigation(url=f"{app_url}/cb?**"):
                _sign_in_with_password(page, world, AuthorizeParams(client_id, f"{app_url}/cb"))
            page.goto(f"{world.url}/account/totp")
            assert page.title() == "Authenticator app"
            assert page.locator(".qr svg path").count() == 1
            secret = page.inner_text("#totp-secret").strip()
            page.fill("input[name=code]", pyotp.TOTP(secret).at(world.clock()))
            page.click("button[type=submit]")
            codes = [c.strip() for c in page.locator("#recovery-codes li").all_inner_texts()]
            assert len(codes) == 10
            page.goto(f"{world.url}/account/totp")
            assert "10 unused recovery codes" in page.inner_text("main")

            # A new browser: password, then the code of the next time step.
            world.clock.advance(30)
            signing = AuthorizeParams(client_id, f"{app_url}/cb")
            page = new_page()
            _sign_in_with_password(page, world, signing)
            assert page.title() == "Two-step verification"
            page.fill("input[name=code]", pyotp.TOTP(secret).at(world.clock()))
            with page.expect_navigation(url=f"{app_url}/cb?**"):
                page.click("button[type=submit]")
            answer = query_of(page.url)
            tokens = redeem(world.url, signing, answer["code"]).json()
            _, claims = verify_jwt(world.url, tokens["id_token"])
            assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"

            # Another browser: a recovery code instead; it then works no more.
            page = new_page()
            _sign_in_with_password(page, world, AuthorizeParams(client_id, f"{app_url}/cb"))
            page.fill("input[name=code]", codes[3])
            with page.expect_navigation(url=f"{app_url}/cb?**"):
                page.click("button[type=submit]")
            page = new_page()
            _sign_in_with_password(page, world, AuthorizeParams(client_id, f"{app_url}/cb"))
            page.fill("input[name=code]", codes[3])
            page.click("button[type=submit]")
            assert "not right" in page.content()
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            for index, page in enumerate(pages):
                path = ARTIFACTS / f"{request.node.name}-{index}.png"
                page.screenshot(path=str(path), full_page=True)
            raise
    assert len([p for p in reached if p.startswith("/cb")]) == 3
    assert not [m for m in console if "Content Security Policy" in m], console
