"""End to end: a device signs in by device code (RFC 8628) while Debian's headless Chromium
opens the verification link, signs in, confirms the code and allows the device; on both
stores. The browser is the system one, driven with Playwright (see test_browser_login)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from idp.config import Settings
from idp.oauth.device import DEVICE_CODE_GRANT
from tests.support.browser import ARGS, CHROMIUM
from tests.support.server import register_client
from tests.support.sso import PASSWORD, World, verify_jwt

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def test_chromium_approves_a_device_by_its_user_code(
    world: World, settings: Settings, request: pytest.FixtureRequest
) -> None:
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    client_id, _ = register_client(
        settings, "Living-room TV", public=True, grant_types=[DEVICE_CODE_GRANT]
    )
    started = httpx.post(
        f"{world.url}/device_authorization",
        data={"client_id": client_id, "scope": "openid profile"},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    codes = started.json()
    console: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.on("console", lambda message: console.append(message.text))
            try:
                page.goto(codes["verification_uri_complete"])
                assert page.title() == "Sign in"
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", PASSWORD)
                with page.expect_navigation(url=f"{world.url}/device?**"):
                    page.click("form[action='/account/login'] button[type=submit]")
                assert page.title() == "Connect a device"
                assert page.input_value("input[name=user_code]") == codes["user_code"]
                page.click("button[type=submit]")
                assert page.title() == "Allow access"
                assert "Living-room TV" in page.content()
                page.click("button[value=allow]")
                assert page.title() == "Device connected"
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
                raise
        finally:
            browser.close()

    tokens = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": codes["device_code"],
            "client_id": client_id,
        },
        timeout=30,
    )
    assert tokens.status_code == 200, tokens.text
    _, claims = verify_jwt(world.url, tokens.json()["id_token"])
    assert claims["sub"] == world.user_id and claims["aud"] == client_id
    assert "refresh_token" not in tokens.json()
    assert not [m for m in console if "Content Security Policy" in m], console
