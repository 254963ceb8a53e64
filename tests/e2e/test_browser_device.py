"""End to end: a device signs in by device code (RFC 8628) while Debian's headless Chromium
opens the verification link, signs in, confirms the code and allows the device; on both
stores. The browser is the system one, driven with Playwright (see test_browser_login)."""

from __future__ import annotations

import httpx
import pytest

from idp.config import Settings
from idp.oauth.device import DEVICE_CODE_GRANT
from tests.support.browser import phone_page
from tests.support.server import register_client
from tests.support.sso import PASSWORD, World, verify_jwt


def test_chromium_approves_a_device_by_its_user_code(
    world: World, settings: Settings, request: pytest.FixtureRequest
) -> None:
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

    with phone_page(request.node.name) as (page, console):
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
