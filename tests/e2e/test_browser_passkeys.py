"""End to end: passkeys in Debian's headless Chromium with a virtual authenticator, on both stores.

The provider's issuer is http://localhost:PORT (WebAuthn needs a domain as relying-party
id; localhost is a secure context over http), and Chromium's virtual authenticator
(DevTools protocol ``WebAuthn`` domain: CTAP2, internal transport, resident keys, user
verification) stands in for a platform authenticator. The person registers a passkey on
the account page and signs in with it without a username; a credential that claims another
user's handle and an authenticator whose counter went back are refused. With a passkey, a
password sign-in asks for it as the second factor. The account page's actions run in the
same browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import CDPSession, Page, sync_playwright

from idp.config import Settings
from idp.store import make_store
from idp.store.base import AuditEntry
from tests.support import relying_party
from tests.support.browser import CHROMIUM, LOCALHOST_ARGS
from tests.support.server import register_client
from tests.support.sso import (
    PASSWORD,
    AuthorizeParams,
    World,
    add_user,
    hidden_inputs,
    query_of,
    redeem,
    running_world,
    sign_in,
    verify_jwt,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NEW_PASSWORD = "a different horse, battery staple"
REFUSED = "That passkey could not be used."


@pytest.fixture
def client_app() -> Iterator[tuple[str, list[str]]]:
    """The relying party's redirect endpoint on 127.0.0.1 (tests.support.relying_party)."""
    with relying_party.client_app() as app:
        yield app


@pytest.fixture
def local_settings(settings: Settings, port: int) -> Settings:
    return replace(settings, issuer=f"http://localhost:{port}")


@pytest.fixture
def local_world(local_settings: Settings, port: int) -> Iterator[World]:
    """The provider (and its user alice) served as http://localhost:PORT."""
    yield from running_world(local_settings, port)


def audit_rows(settings: Settings) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        store = make_store(settings.database_url)
        await store.open()
        try:
            return await store.list_audit()
        finally:
            await store.close()

    return asyncio.run(read())


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A CTAP2 platform authenticator with resident keys that verifies its user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def credentials(cdp: CDPSession, authenticator: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    return list(found["credentials"])


def replace_credential(
    cdp: CDPSession, authenticator: str, old: dict[str, Any], **changes: Any
) -> None:
    """Put ``old`` back into the authenticator with ``changes`` (a counter, a user handle)."""
    cdp.send(
        "WebAuthn.removeCredential",
        {"authenticatorId": authenticator, "credentialId": old["credentialId"]},
    )
    fields = ("credentialId", "isResidentCredential", "rpId", "privateKey", "userHandle")
    credential = {name: old[name] for name in fields} | {"signCount": old["signCount"]}
    cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": authenticator, "credential": credential | changes},
    )


def account_sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/account")
    assert page.title() == "Sign in"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation(url=f"{base}/account"):
        page.click("form[action='/account/login'] button")
    assert page.title() == "Your account"


def register_passkey(page: Page, base: str, name: str) -> None:
    page.fill("input[name=name]", name)
    with page.expect_navigation(url=f"{base}/account?done=passkey-added"):
        page.click("text=Add a passkey")
    assert name in page.inner_text("#passkeys")


def passkey_sign_in(page: Page, base: str, authorization: AuthorizeParams) -> None:
    page.context.clear_cookies()
    page.goto(base + authorization.url())
    assert page.title() == "Sign in"
    page.click("text=Sign in with a passkey")


def with_screenshot(page: Page, request: pytest.FixtureRequest) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)


def test_passkey_registered_on_the_account_page_signs_in_without_a_username(
    local_world: World,
    local_settings: Settings,
    port: int,
    client_app: tuple[str, list[str]],
    request: pytest.FixtureRequest,
) -> None:
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    base = f"http://localhost:{port}"
    app_url, reached = client_app
    client_id, _ = register_client(
        local_settings,
        "browser app",
        public=True,
        redirect_uris=[f"{app_url}/cb"],
        grant_types=["authorization_code"],
    )
    bob = add_user(local_settings, "bob", PASSWORD, email=None, name=None)
    authorization = AuthorizeParams(client_id, f"{app_url}/cb")
    console: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LOCALHOST_ARGS
        )
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(message.text))
            cdp, authenticator = virtual_authenticator(page)
            try:
                account_sign_in(page, base, "alice", PASSWORD)
                register_passkey(page, base, "Test laptop")
                [alice_key] = credentials(cdp, authenticator)
                assert alice_key["isResidentCredential"]

                # Usernameless sign-in: the passkey names alice; the app gets its code.
                with page.expect_navigation(url=f"{app_url}/cb?**"):
                    passkey_sign_in(page, base, authorization)
                assert "signed in" in page.content()

                # The authenticator's counter goes back, as a clone's would: refused.
                [used] = credentials(cdp, authenticator)
                assert used["signCount"] > 0
                replace_credential(cdp, authenticator, used, signCount=0)
                passkey_sign_in(page, base, AuthorizeParams(client_id, f"{app_url}/cb"))
                page.wait_for_selector(f".error:has-text('{REFUSED}')")
                cdp.send(
                    "WebAuthn.removeCredential",
                    {"authenticatorId": authenticator, "credentialId": used["credentialId"]},
                )

                # Bob's credential presented with alice's user handle: refused.
                account_sign_in(page, base, "bob", PASSWORD)
                register_passkey(page, base, "Bob's key")
                [bob_key] = credentials(cdp, authenticator)
                replace_credential(cdp, authenticator, bob_key, userHandle=alice_key["userHandle"])
                passkey_sign_in(page, base, AuthorizeParams(client_id, f"{app_url}/cb"))
                page.wait_for_selector(f".error:has-text('{REFUSED}')")
            except Exception:
                with_screenshot(page, request)
                raise
        finally:
            browser.close()

    callbacks = [path for path in reached if path.startswith("/cb")]
    assert len(callbacks) == 1
    answer = query_of(f"{app_url}{callbacks[0]}")
    assert answer["state"] == authorization.state
    tokens = redeem(local_world.url, authorization, answer["code"]).json()
    _, claims = verify_jwt(local_world.url, tokens["id_token"])
    assert claims["sub"] == local_world.user_id

    rows = audit_rows(local_settings)
    signed = [r for r in rows if r.action == "passkey.sign_in"]
    assert [(r.outcome, r.target) for r in signed] == [
        ("success", local_world.user_id),
        ("failure", ""),
        ("failure", ""),
    ]
    assert signed[0].detail["amr"] == ["hwk", "user", "mfa"]
    assert [r.detail["reason"] for r in signed[1:]] == ["counter_went_back", "other_user"]
    [clone] = [r for r in rows if r.action == "passkey.clone_suspected"]
    assert clone.target == local_world.user_id and clone.detail["presented_count"] == 1
    added = [r.target for r in rows if r.action == "passkey.add"]
    assert added == [local_world.user_id, bob]
    assert not [m for m in console if "Content Security Policy" in m], console


def test_passkey_as_the_second_factor_after_the_password(
    local_world: World,
    local_settings: Settings,
    port: int,
    client_app: tuple[str, list[str]],
    request: pytest.FixtureRequest,
) -> None:
    base = f"http://localhost:{port}"
    app_url, reached = client_app
    client_id, _ = register_client(
        local_settings,
        "browser app",
        public=True,
        redirect_uris=[f"{app_url}/cb"],
        grant_types=["authorization_code"],
    )
    authorization = AuthorizeParams(client_id, f"{app_url}/cb")
    console: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LOCALHOST_ARGS
        )
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(message.text))
            virtual_authenticator(page)
            try:
                account_sign_in(page, base, "alice", PASSWORD)
                register_passkey(page, base, "Test laptop")

                # The password first, then the passkey on the second-factor page.
                page.context.clear_cookies()
                page.goto(base + authorization.url())
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", PASSWORD)
                page.click("form[action='/login'] button")
                page.wait_for_selector("text=Two-step verification")
                assert page.locator("input[name=code]").count() == 0  # no authenticator app
                with page.expect_navigation(url=f"{app_url}/cb?**"):
                    page.click("text=Use a passkey")
                assert "signed in" in page.content()
            except Exception:
                with_screenshot(page, request)
                raise
        finally:
            browser.close()

    [callback] = [path for path in reached if path.startswith("/cb")]
    answer = query_of(f"{app_url}{callback}")
    tokens = redeem(local_world.url, authorization, answer["code"]).json()
    _, claims = verify_jwt(local_world.url, tokens["id_token"])
    assert claims["sub"] == local_world.user_id
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"
    verified = [r for r in audit_rows(local_settings) if r.action == "mfa.verify"]
    assert [(r.outcome, r.detail["method"]) for r in verified] == [("success", "passkey")]
    assert not [m for m in console if "Content Security Policy" in m], console


def test_account_page_changes_password_signs_out_a_browser_and_revokes_an_app(
    local_world: World,
    local_settings: Settings,
    port: int,
    request: pytest.FixtureRequest,
) -> None:
    base = f"http://localhost:{port}"
    # Another browser (plain HTTP) signs alice in to the consenting app and allows it.
    other = local_world.browser()
    consenting = local_world.request(local_world.consenting)
    page_html = other.get(consenting.url())
    login = other.post(
        "/login",
        data={**hidden_inputs(page_html.text), "username": "alice", "password": PASSWORD},
    )
    assert login.status_code == 200 and "Allow access?" in login.text
    allowed = other.post("/consent", data={**hidden_inputs(login.text), "decision": "allow"})
    assert allowed.status_code == 303 and "code=" in allowed.headers["location"]
    assert other.get("/account").text.count('name="sid"') == 0  # its own page: one session

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LOCALHOST_ARGS
        )
        try:
            page = browser.new_page()
            try:
                account_sign_in(page, base, "alice", PASSWORD)
                assert "consenting" in page.inner_text("#apps")
                assert page.inner_text("#sessions").count("Another browser") == 1

                page.fill("#current", PASSWORD)
                page.fill("#new", NEW_PASSWORD)
                page.fill("#repeat", NEW_PASSWORD)
                with page.expect_navigation(url=f"{base}/account?done=password"):
                    page.click("text=Change password")

                with page.expect_navigation(url=f"{base}/account?done=session-ended"):
                    page.click("#sessions button")
                assert "Another browser" not in page.inner_text("#sessions")

                with page.expect_navigation(url=f"{base}/account?done=app-revoked"):
                    page.click("#apps button")
                assert "consenting" not in page.inner_text("#apps")
            except Exception:
                with_screenshot(page, request)
                raise
        finally:
            browser.close()

    # The other browser was signed out; the new password is the one that works.
    assert 'action="/account/login"' in other.get("/account").text
    fresh = httpx.Client(base_url=local_world.url, follow_redirects=False, timeout=30)
    with pytest.raises(AssertionError):
        sign_in(fresh, local_world.request(), "alice", PASSWORD)
    assert "code" in sign_in(fresh, local_world.request(), "alice", NEW_PASSWORD)
    actions = [r.action for r in audit_rows(local_settings)]
    assert {"user.password", "session.end", "consent.revoke"} <= set(actions)
