"""End to end: Debian's headless Chromium signs in through the login page, on both stores.

The browser is the system one (/usr/bin/chromium, installed by scripts/test), driven with
Playwright; nothing is downloaded. The client application is a small HTTP server on another
port, so the browser really follows the 303 from the login form to another origin, under
the login page's Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idp.config import Settings
from tests.support import relying_party
from tests.support.browser import phone_page
from tests.support.server import register_client
from tests.support.sso import (
    PASSWORD,
    AuthorizeParams,
    World,
    query_of,
    redeem,
    verify_jwt,
)


@pytest.fixture
def client_app() -> Iterator[tuple[str, list[str]]]:
    """The relying party's redirect endpoint on 127.0.0.1 (tests.support.relying_party)."""
    with relying_party.client_app() as app:
        yield app


def test_chromium_signs_in_through_the_login_page(
    world: World,
    settings: Settings,
    client_app: tuple[str, list[str]],
    request: pytest.FixtureRequest,
) -> None:
    app_url, reached = client_app
    client_id, _ = register_client(
        settings,
        "browser app",
        public=True,
        redirect_uris=[f"{app_url}/cb"],
        grant_types=["authorization_code"],
    )
    authorization = AuthorizeParams(client_id, f"{app_url}/cb")

    with phone_page(request.node.name) as (page, console):
        page.goto(world.url + authorization.url())
        assert page.title() == "Sign in"
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "Incorrect username or password." in page.content()
        assert page.input_value("input[name=username]") == "alice"
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation(url=f"{app_url}/cb?**"):
            page.click("button[type=submit]")
        assert page.content().count("signed in") == 1
        assert page.url.startswith(f"{app_url}/cb?")

    callbacks = [path for path in reached if path.startswith("/cb")]
    assert len(callbacks) == 1
    answer = query_of(f"{app_url}{callbacks[0]}")
    assert answer["state"] == authorization.state and answer["iss"] == world.url
    tokens = redeem(world.url, authorization, answer["code"]).json()
    _, claims = verify_jwt(world.url, tokens["id_token"])
    assert claims["sub"] == world.user_id and claims["nonce"] == authorization.nonce
    assert not [m for m in console if "Content Security Policy" in m], console
