"""The authenticator-app account pages over a real server on both stores: a signed-in
session, a recent sign-in (re-authentication), CSRF, enrolment, recovery codes, removal."""

from __future__ import annotations

import httpx
import pyotp

from tests.support.factors import MFA, code_now, enrol_totp
from tests.support.server import with_store
from tests.support.sso import PASSWORD, World, hidden_inputs, sign_in


def _post(browser: httpx.Client, path: str, page: httpx.Response, **fields: str) -> httpx.Response:
    hidden = hidden_inputs(page.text)
    return browser.post(path, data={"request": hidden["request"], "csrf": hidden["csrf"], **fields})


def _secret(page: httpx.Response) -> str:
    start = page.text.index('id="totp-secret">') + len('id="totp-secret">')
    return page.text[start : page.text.index("<", start)]


def _codes(page: httpx.Response) -> list[str]:
    block = page.text[page.text.index('id="recovery-codes"') :]
    block = block[: block.index("</ul>")]
    return [
        line.split("<li>")[1].split("</li>")[0] for line in block.splitlines() if "<li>" in line
    ]


def test_without_a_session_the_pages_say_to_sign_in(world: World) -> None:
    with world.browser() as browser:
        page = browser.get("/account/totp")
        assert page.status_code == 401 and "not signed in" in page.text
        assert 'href="/account/login"' in page.text
        assert browser.post("/account/totp/remove", data={}).status_code == 401
        assert browser.get("/account/reauth").status_code == 401


def test_enrolment_shows_a_qr_code_and_turns_totp_on_with_a_first_code(world: World) -> None:
    world.clock.freeze()
    with world.browser() as browser:
        sign_in(browser, world.request())
        page = browser.get("/account/totp")
        assert page.status_code == 200
        assert "script" not in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert "<svg viewBox=" in page.text and "<script" not in page.text
        secret = _secret(page)
        # Reloading shows the same pending secret.
        assert _secret(browser.get("/account/totp")) == secret

        no_csrf = browser.post(
            "/account/totp", data={"request": hidden_inputs(page.text)["request"]}
        )
        assert no_csrf.status_code == 403
        wrong = _post(browser, "/account/totp", page, code="12345x")
        assert wrong.status_code == 400 and "not right" in wrong.text
        done = _post(browser, "/account/totp", page, code=pyotp.TOTP(secret).at(world.clock()))
        assert done.status_code == 200, done.text
        codes = _codes(done)
        assert len(codes) == 10
        # The session has just proved the factor: a request for MFA is answered at once.
        assert browser.get(world.request(acr_values=MFA).url()).status_code == 303

        managed = browser.get("/account/totp")
        assert "10 unused recovery codes" in managed.text and "<svg" not in managed.text
        fresh = _post(browser, "/account/recovery-codes", managed)
        new_codes = _codes(fresh)
        assert len(new_codes) == 10 and not set(new_codes) & set(codes)

    url = world.server.settings.database_url
    assert with_store(url, lambda store: store.count_recovery_codes(world.user_id)) == 10
    actions = [
        e.action for e in with_store(world.server.settings.database_url, lambda s: s.list_audit())
    ]
    assert "mfa.totp.enable" in actions and "mfa.recovery_codes.new" in actions


def test_changes_need_a_recent_sign_in(world: World) -> None:
    world.clock.freeze()
    with world.browser() as browser:
        sign_in(browser, world.request())
        secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
        world.clock.advance(301)
        assert (
            browser.get("/account/totp").headers["location"] == "/account/reauth?next=/account/totp"
        )
        stale = _post(browser, "/account/totp/remove", browser.get("/account/reauth"))
        assert stale.status_code == 303  # nothing removed: sent to re-authenticate
        assert stale.headers["location"].startswith("/account/reauth?")
        form = browser.get("/account/reauth?next=https://elsewhere.example/")
        assert 'name="password"' in form.text and 'name="code"' in form.text
        wrong = _post(browser, "/account/reauth", form, password="nope", code="000000")
        assert wrong.status_code == 400 and "Incorrect password" in wrong.text
        world.clock.advance(30)
        done = _post(
            browser, "/account/reauth", wrong, password=PASSWORD, code=code_now(secret, world.clock)
        )
        assert done.status_code == 303 and done.headers["location"] == "/account/totp"
        managed = browser.get("/account/totp")
        assert managed.status_code == 200
        removed = _post(browser, "/account/totp/remove", managed)
        assert removed.status_code == 200 and "is off" in removed.text
        assert "<svg" in removed.text  # enrolment offered again
    # Only the new pending secret the page offers is left: nothing that signs in.
    left = with_store(world.server.settings.database_url, lambda s: s.get_totp(world.user_id))
    assert left is not None and left.state == "pending"


def test_a_form_only_counts_in_its_own_session(world: World) -> None:
    with world.browser() as first, world.browser() as second:
        sign_in(first, world.request())
        sign_in(second, world.request())
        page = first.get("/account/totp")
        hidden = hidden_inputs(page.text)
        # Another signed-in browser cannot post it (its binding cookie differs) ...
        other = second.post("/account/totp/remove", data=hidden)
        assert other.status_code == 403
        # ... nor can this browser once it has signed in again (a new session).
        sign_in(first, world.request(prompt="login"))
        assert first.post("/account/totp/remove", data=hidden).status_code == 403
