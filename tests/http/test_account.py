"""The account page over HTTP on both stores: its sign-in, its changes, and their refusals
(no session, a stale sign-in, a forged or foreign form, a wrong current password, another
user's passkey), and the strict headers of its pages."""

from __future__ import annotations

import base64

import httpx
import pytest

from idp.store.base import Store
from tests.support.factors import code_now, enrol_totp, wrong_code
from tests.support.records import a_passkey
from tests.support.server import register_client, with_store
from tests.support.sso import (
    PASSWORD,
    AuthorizeParams,
    World,
    add_user,
    hidden_inputs,
    query_of,
    redeem,
    sign_in,
)

NEW_PASSWORD = "a different horse, battery staple"
APP_CB = "http://127.0.0.1:8765/notes/cb"


def account_sign_in(browser: httpx.Client, username: str = "alice") -> httpx.Response:
    """Sign in on the account page's own login form; return the account page."""
    page = browser.get("/account/login")
    assert page.status_code == 200 and 'action="/account/login"' in page.text
    fields = hidden_inputs(page.text)
    done = browser.post(
        "/account/login",
        data={"request": fields["request"], "csrf": fields["csrf"], "username": username,
              "password": PASSWORD},
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/account", done.text
    account = browser.get("/account")
    assert account.status_code == 200 and "Your account" in account.text
    return account


def form_of(page: httpx.Response, **fields: str) -> dict[str, str]:
    found = hidden_inputs(page.text)
    return {"request": found["request"], "csrf": found["csrf"], **fields}


def change_password(browser: httpx.Client, page: httpx.Response, current: str) -> httpx.Response:
    data = form_of(page, current=current, new=NEW_PASSWORD, repeat=NEW_PASSWORD)
    return browser.post("/account/password", data=data)


def test_account_page_without_a_session_offers_its_own_sign_in(world: World) -> None:
    with world.browser() as browser:
        page = browser.get("/account")
        assert page.status_code == 200
        assert 'action="/account/login"' in page.text
        assert 'data-options="/account/login/passkey/options"' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'; connect-src 'self';" in csp
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        script = browser.get("/assets/webauthn.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "navigator.credentials" in script.text


def test_account_page_lists_and_links(world: World) -> None:
    with world.browser() as browser:
        page = account_sign_in(browser)
        assert "alice" in page.text and "This browser" in page.text
        assert 'href="/account/totp"' in page.text and 'href="/account/recovery-codes"' in page.text
        assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1


def test_password_change_needs_the_current_password(world: World) -> None:
    with world.browser() as browser:
        page = account_sign_in(browser)
        wrong = change_password(browser, page, "not my password")
        assert wrong.status_code == 400 and "current password is not right" in wrong.text
        done = change_password(browser, page, PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
        assert "password was changed" in browser.get(done.headers["location"]).text
    with world.browser() as fresh:
        page = fresh.get("/account")
        fields = hidden_inputs(page.text)
        data = {"request": fields["request"], "csrf": fields["csrf"], "username": "alice"}
        refused = fresh.post("/account/login", data={**data, "password": PASSWORD})
        assert refused.status_code == 400 and "Incorrect username or password." in refused.text
        assert (
            fresh.post("/account/login", data={**data, "password": NEW_PASSWORD}).status_code == 303
        )


def test_guessing_the_current_password_is_throttled(world: World) -> None:
    world.clock.freeze()  # every attempt at one instant: the pause after the allowance holds
    allowance = world.server.settings.login_max_failures
    with world.browser() as browser:
        page = account_sign_in(browser)
        for _ in range(allowance):
            wrong = change_password(browser, page, "a guess")
            assert wrong.status_code == 400 and "current password is not right" in wrong.text
        held = change_password(browser, page, PASSWORD)
        assert held.status_code == 400 and "Too many failed sign-ins" in held.text
        world.clock.advance(2)
        assert change_password(browser, page, PASSWORD).status_code == 303


def test_changes_without_a_session_go_to_the_sign_in(world: World) -> None:
    with world.browser() as browser:
        page = account_sign_in(browser)
        browser.cookies.delete("idp_session")
        for path in ("/account/password", "/account/sessions/end-others", "/account/apps/revoke"):
            answer = browser.post(path, data=form_of(page, current=PASSWORD))
            assert answer.status_code == 303 and answer.headers["location"] == "/account"
        options = browser.post("/account/passkeys/options", data=form_of(page))
        assert options.status_code == 401 and options.json()["error"] == "login_required"


def test_a_stale_sign_in_must_sign_in_again(world: World) -> None:
    with world.browser() as browser:
        page = account_sign_in(browser)
        world.clock.advance(world.server.settings.reauth_max_age + 1)
        stale = change_password(browser, page, PASSWORD)
        assert stale.status_code == 403 and "Sign in again" in stale.text
        assert 'action="/account/login"' in stale.text
        options = browser.post("/account/passkeys/options", data=form_of(page))
        assert options.status_code == 403
        again = browser.get("/account")
        assert "sign in again</a> first" in again.text
        # Revoking an app's access is never held back by an old sign-in.
        revoked = browser.post("/account/apps/revoke", data=form_of(page, client_id="none"))
        assert revoked.status_code == 400 and "no access" in revoked.text
        # A new sign-in makes changes possible again.
        page = account_sign_in(browser)
        assert change_password(browser, page, PASSWORD).status_code == 303


def test_forged_and_foreign_forms_are_refused(world: World) -> None:
    with world.browser() as browser:
        page = account_sign_in(browser)
        forged = form_of(page, current=PASSWORD, new=NEW_PASSWORD, repeat=NEW_PASSWORD)
        forged["csrf"] = "A" * 43
        assert browser.post("/account/password", data=forged).status_code == 403
        missing = {k: v for k, v in forged.items() if k != "csrf"}
        assert browser.post("/account/password", data=missing).status_code == 403
        # Another browser's page and CSRF token do not work with this browser's cookies.
        with world.browser() as other:
            theirs = account_sign_in(other)
        foreign = browser.post(
            "/account/password",
            data=form_of(theirs, current=PASSWORD, new=NEW_PASSWORD, repeat=NEW_PASSWORD),
        )
        assert foreign.status_code == 403
        # A page of an earlier session of this browser is refused in the new one.
        account_sign_in(browser)
        old = change_password(browser, page, PASSWORD)
        assert old.status_code == 403 and "another sign-in" in old.text


def test_another_users_passkey_cannot_be_removed(world: World) -> None:
    bob = add_user(world.server.settings, "bob", PASSWORD, email=None, name=None)

    async def add(store: Store) -> None:
        await store.add_passkey(a_passkey(b"bob-key", user_id=bob))
        await store.add_passkey(a_passkey(b"alice-key", user_id=world.user_id, name="Mine"))

    encoded = {
        key: base64.urlsafe_b64encode(key).rstrip(b"=").decode()
        for key in (b"bob-key", b"alice-key")
    }
    with world.browser() as browser:
        account_sign_in(browser)  # before the passkey: then the password alone signs in
        with_store(world.server.settings.database_url, add)
        page = browser.get("/account")
        assert "Mine" in page.text and encoded[b"alice-key"] in page.text
        assert encoded[b"bob-key"] not in page.text
        refused = browser.post(
            "/account/passkeys/remove", data=form_of(page, credential_id=encoded[b"bob-key"])
        )
        assert refused.status_code == 400 and "no such passkey" in refused.text
        bad = browser.post("/account/passkeys/remove", data=form_of(page, credential_id="%%%"))
        assert bad.status_code == 400
        done = browser.post(
            "/account/passkeys/remove", data=form_of(page, credential_id=encoded[b"alice-key"])
        )
        assert done.headers["location"] == "/account?done=passkey-removed"

    async def left(store: Store) -> list[bytes]:
        keys = [*await store.list_passkeys(bob), *await store.list_passkeys(world.user_id)]
        return [p.credential_id for p in keys]

    assert with_store(world.server.settings.database_url, left) == [b"bob-key"]


def test_signing_out_other_browsers_ends_their_sessions(world: World) -> None:
    with world.browser() as other, world.browser() as third, world.browser() as browser:
        account_sign_in(other)
        account_sign_in(third)
        page = account_sign_in(browser)
        assert page.text.count("Another browser") == 2
        sid = hidden_inputs(page.text)["sid"]
        one = browser.post("/account/sessions/end", data=form_of(page, sid=sid))
        assert one.headers["location"] == "/account?done=session-ended"
        again = browser.post("/account/sessions/end", data=form_of(page, sid=sid))
        assert again.status_code == 400 and "already ended" in again.text
        rest = browser.post("/account/sessions/end-others", data=form_of(page))
        assert rest.headers["location"] == "/account?done=sessions-ended"
        for signed_out in (other, third):
            assert 'action="/account/login"' in signed_out.get("/account").text
        assert "This browser" in browser.get("/account").text


def test_a_browser_signed_out_from_the_account_page_loses_its_tokens(world: World) -> None:
    with world.browser() as other, world.browser() as browser:
        request = world.request()
        answer = sign_in(other, request)
        access = redeem(world.url, request, answer["code"]).json()["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        assert other.get("/userinfo", headers=bearer).status_code == 200
        page = account_sign_in(browser)
        sid = hidden_inputs(page.text)["sid"]
        assert browser.post("/account/sessions/end", data=form_of(page, sid=sid)).status_code == 303
        assert other.get("/userinfo", headers=bearer).status_code == 401
        assert other.get(world.request().url()).status_code == 200  # asked to sign in again


def test_removing_an_apps_access_ends_its_refresh_tokens(world: World) -> None:
    client_id, _ = register_client(
        world.server.settings,
        "notes",
        public=True,
        redirect_uris=[APP_CB],
        grant_types=["authorization_code", "refresh_token"],
        require_consent=True,
    )
    # The app's browser and the account page's are two: a sign-in on the account page in
    # the app's browser would end the app's session, and its grants, by itself.
    with world.browser() as browser, world.browser() as owner:
        request = AuthorizeParams(client_id, APP_CB)
        page = browser.get(request.url())
        asked = browser.post(
            "/login", data={**form_of(page), "username": "alice", "password": PASSWORD}
        )
        allowed = browser.post("/consent", data={**form_of(asked), "decision": "allow"})
        code = query_of(allowed.headers["location"])["code"]
        tokens = redeem(world.url, request, code).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert browser.get("/userinfo", headers=bearer).status_code == 200

        account = account_sign_in(owner)
        assert "notes" in account.text
        assert browser.get("/userinfo", headers=bearer).status_code == 200
        done = owner.post("/account/apps/revoke", data=form_of(account, client_id=client_id))
        assert done.headers["location"] == "/account?done=app-revoked"
        assert "notes" not in owner.get("/account").text
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refused = httpx.post(f"{world.url}/token", data={**refresh, "client_id": client_id})
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert browser.get("/userinfo", headers=bearer).status_code == 401
        again = owner.post("/account/apps/revoke", data=form_of(account, client_id=client_id))
        assert again.status_code == 400


@pytest.mark.parametrize("path", ["/account/login/passkey/options", "/login/passkey/options"])
def test_passkey_options_need_the_forms_csrf_token(world: World, path: str) -> None:
    with world.browser() as browser:
        page = browser.get("/account" if path.startswith("/account") else world.request().url())
        fields = hidden_inputs(page.text)
        refused = browser.post(path, data={"request": fields["request"], "csrf": "x" * 43})
        assert refused.status_code == 403
        options = browser.post(path, data={"request": fields["request"], "csrf": fields["csrf"]})
        assert options.status_code == 200 and options.headers["cache-control"] == "no-store"
        body = options.json()
        assert body["publicKey"]["userVerification"] == "required"
        assert body["publicKey"]["rpId"] == "127.0.0.1"
        assert body["publicKey"]["allowCredentials"] == [] and body["challenge_id"]


def test_an_account_with_two_step_verification_needs_its_code_to_sign_in(world: World) -> None:
    """The password alone never opens the account page of an account with a second factor:
    the code goes in the same form, and a wrong one starts no session."""
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        page = browser.get("/account/login")
        assert 'name="code"' in page.text

        def attempt(code: str) -> httpx.Response:
            fields = hidden_inputs(browser.get("/account/login").text)
            data = {"request": fields["request"], "csrf": fields["csrf"], "username": "alice",
                    "password": PASSWORD, "code": code}  # fmt: skip
            return browser.post("/account/login", data=data)

        without = attempt("")
        assert without.status_code == 400 and "two-step verification" in without.text
        wrong = attempt(wrong_code(secret, world.clock))
        assert wrong.status_code == 400
        assert 'action="/account/login"' in browser.get("/account").text  # no session yet
        done = attempt(code_now(secret, world.clock))
        assert done.status_code == 303 and done.headers["location"] == "/account", done.text
        assert "Your account" in browser.get("/account").text
