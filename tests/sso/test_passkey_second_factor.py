"""A passkey as the second factor after the password, over a real server on both stores
with a software authenticator: the page offers it, its options allow only the user's own
credentials, a right assertion finishes the sign-in (amr pwd, hwk or swk, mfa), another
user's passkey, a used challenge and too many attempts are refused and audited; the
account page's password sign-in sends a passkey-only account to its passkey sign-in."""

from __future__ import annotations

import json
from typing import Any

import httpx

from idp.sso.passkeys import begin_registration, finish_registration
from idp.store.base import Store
from tests.support.authenticator import SoftAuthenticator, b64url
from tests.support.factors import MFA, code_now, enrol_totp, is_second_factor_page
from tests.support.server import with_store
from tests.support.sso import (
    PASSWORD,
    WEB_CB,
    AuthorizeParams,
    World,
    add_user,
    hidden_inputs,
    query_of,
    redeem,
    submit_login,
    verify_jwt,
)

OPTIONS = "/login/second-factor/passkey/options"
ASSERTION = "/login/second-factor/passkey"


def _register(world: World, user_id: str, device: SoftAuthenticator) -> bytes:
    """Register a passkey of ``device`` for the user as the account page would; its id."""
    settings = world.server.settings

    async def work(store: Store) -> bytes:
        user = await store.get_user(user_id)
        assert user is not None
        ceremony = await begin_registration(store, settings, world.clock, user, browser="setup")
        record = await finish_registration(
            store, settings, world.clock, user,
            challenge_id=ceremony.challenge_id,
            credential_json=device.create(json.loads(ceremony.options_json)),
            name="Laptop", browser="setup",
        )  # fmt: skip
        return record.credential_id

    return with_store(settings.database_url, work)


def _device(world: World, **flags: bool) -> SoftAuthenticator:
    return SoftAuthenticator(world.url, **flags)


def _password_step(
    browser: httpx.Client, request: AuthorizeParams, username: str = "alice"
) -> httpx.Response:
    page = browser.get(request.url())
    asked = submit_login(browser, page, username, PASSWORD)
    assert asked.status_code == 200, asked.text
    assert is_second_factor_page(asked) or f'action="{ASSERTION}"' in asked.text
    return asked


def _options(browser: httpx.Client, page: httpx.Response) -> dict[str, Any]:
    fields = hidden_inputs(page.text)
    answer = browser.post(OPTIONS, data={"request": fields["request"], "csrf": fields["csrf"]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    document: dict[str, Any] = answer.json()
    return document


def _post_assertion(
    browser: httpx.Client, page: httpx.Response, challenge_id: str, credential: str
) -> httpx.Response:
    fields = hidden_inputs(page.text)
    return browser.post(
        ASSERTION,
        data={"request": fields["request"], "csrf": fields["csrf"], "challenge": challenge_id,
              "credential": credential},
    )  # fmt: skip


def _use_passkey(
    browser: httpx.Client, page: httpx.Response, device: SoftAuthenticator
) -> httpx.Response:
    options = _options(browser, page)
    return _post_assertion(browser, page, options["challenge_id"], device.get(options["publicKey"]))


def _claims(world: World, request: AuthorizeParams, location: str) -> dict[str, Any]:
    tokens = redeem(world.url, request, query_of(location)["code"])
    assert tokens.status_code == 200, tokens.text
    _, claims = verify_jwt(world.url, tokens.json()["id_token"])
    return claims


def _mfa_audit(world: World) -> list[tuple[str, dict[str, object]]]:
    entries = with_store(world.server.settings.database_url, lambda s: s.list_audit())
    return [(e.outcome, dict(e.detail)) for e in entries if e.action == "mfa.verify"]


def test_a_passkey_finishes_the_sign_in_after_the_password(world: World) -> None:
    device = _device(world)
    credential_id = _register(world, world.user_id, device)
    request = world.request()
    with world.browser() as browser:
        asked = _password_step(browser, request)
        assert "Use a passkey" in asked.text and 'name="code"' not in asked.text  # no TOTP
        assert "script-src 'self'" in asked.headers["content-security-policy"]
        assert "idp_session" not in browser.cookies
        options = _options(browser, asked)
        allowed = [d["id"] for d in options["publicKey"]["allowCredentials"]]
        assert allowed == [b64url(credential_id)]
        done = _post_assertion(
            browser, asked, options["challenge_id"], device.get(options["publicKey"])
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith(WEB_CB + "?")
        assert "idp_session" in browser.cookies
        claims = _claims(world, request, done.headers["location"])
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == MFA
    [(outcome, detail)] = _mfa_audit(world)
    assert outcome == "success" and detail["method"] == "passkey"
    assert detail["credential"] == b64url(credential_id)


def test_a_synced_passkey_is_swk_and_totp_still_works_beside_it(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    device = _device(world, backup_eligible=True)
    _register(world, world.user_id, device)
    request = world.request()
    with world.browser() as browser:
        asked = _password_step(browser, request)
        assert 'name="code"' in asked.text and "Use a passkey" in asked.text
        done = _use_passkey(browser, asked, device)
        assert done.status_code == 303, done.text
        assert _claims(world, request, done.headers["location"])["amr"] == ["pwd", "swk", "mfa"]
    with world.browser() as other:
        asked = _password_step(other, world.request())
        fields = hidden_inputs(asked.text)
        typed = other.post(
            "/login/second-factor",
            data={"request": fields["request"], "csrf": fields["csrf"],
                  "code": code_now(secret, world.clock)},
        )  # fmt: skip
        assert typed.status_code == 303, typed.text


def test_another_users_passkey_is_refused(world: World) -> None:
    _register(world, world.user_id, _device(world))
    bob = add_user(world.server.settings, "bob", PASSWORD, email=None, name=None)
    bobs = _device(world)
    _register(world, bob, bobs)
    with world.browser() as browser:
        asked = _password_step(browser, world.request())
        options = _options(browser, asked)
        # Bob's authenticator answers alice's challenge with bob's credential.
        forged = bobs.get({**options["publicKey"], "allowCredentials": []})
        refused = _post_assertion(browser, asked, options["challenge_id"], forged)
        assert refused.status_code == 200 and "not accepted" in refused.text
        assert "idp_session" not in browser.cookies
    assert [(o, d.get("reason")) for o, d in _mfa_audit(world)] == [("failure", "other_user")]


def test_a_used_or_foreign_challenge_is_refused(world: World) -> None:
    device = _device(world)
    _register(world, world.user_id, device)
    with world.browser() as browser:
        asked = _password_step(browser, world.request())
        options = _options(browser, asked)
        assertion = device.get(options["publicKey"])
        # Another browser cannot use this browser's pending form or challenge.
        with world.browser() as stranger:
            fields = hidden_inputs(asked.text)
            stolen = stranger.post(
                ASSERTION,
                data={"request": fields["request"], "csrf": fields["csrf"],
                      "challenge": options["challenge_id"], "credential": assertion},
            )  # fmt: skip
            assert stolen.status_code == 403
        done = _post_assertion(browser, asked, options["challenge_id"], assertion)
        assert done.status_code == 303, done.text
        # The same assertion again, for a new sign-in in the same browser: its challenge is used.
        again = _password_step(browser, world.request(prompt="login"))
        replayed = _post_assertion(browser, again, options["challenge_id"], assertion)
        assert replayed.status_code == 200 and "expired" in replayed.text
    reasons = [(o, d.get("reason")) for o, d in _mfa_audit(world)]
    assert reasons == [("success", None), ("failure", "challenge")]


def test_passkey_attempts_are_throttled_with_code_attempts(world: World) -> None:
    world.clock.freeze()
    device = _device(world)
    _register(world, world.user_id, device)
    with world.browser() as browser:
        page = _password_step(browser, world.request())
        for _ in range(world.server.settings.login_max_failures):
            page = _post_assertion(browser, page, "no-such-challenge", "{}")
            assert page.status_code == 200, page.text
        throttled = _use_passkey(browser, page, device)
        assert throttled.status_code == 429, throttled.text
        assert int(throttled.headers["retry-after"]) >= 1 and "Too many" in throttled.text
        world.clock.advance(61)
        done = _use_passkey(browser, throttled, device)
        assert done.status_code == 303, done.text
    reasons = [d.get("reason") for o, d in _mfa_audit(world) if o == "failure"]
    assert "challenge" in reasons
    url = world.server.settings.database_url
    throttled = with_store(url, lambda s: s.list_audit(action="signin.throttled"))
    assert [e.detail["step"] for e in throttled] == ["passkey"]


def test_options_need_the_pending_form_and_a_passkey(world: World) -> None:
    world.clock.freeze()
    enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        asked = _password_step(browser, world.request())
        assert "Use a passkey" not in asked.text  # TOTP only: no passkey button, no script
        assert "script-src" not in asked.headers["content-security-policy"]
        fields = hidden_inputs(asked.text)
        none = browser.post(OPTIONS, data={"request": fields["request"], "csrf": fields["csrf"]})
        assert none.status_code == 400 and none.json()["error"] == "invalid_request"
        forged = browser.post(OPTIONS, data={"request": fields["request"], "csrf": "x"})
        assert forged.status_code == 403
        garbled = browser.post(OPTIONS, data={"request": "nope", "csrf": fields["csrf"]})
        assert garbled.status_code == 400


def test_account_password_sign_in_points_a_passkey_only_account_to_its_passkey(
    world: World,
) -> None:
    _register(world, world.user_id, _device(world))
    with world.browser() as browser:
        page = browser.get("/account/login")
        fields = hidden_inputs(page.text)
        refused = browser.post(
            "/account/login",
            data={"request": fields["request"], "csrf": fields["csrf"], "username": "alice",
                  "password": PASSWORD},
        )  # fmt: skip
        assert refused.status_code == 400, refused.text
        assert "two-step verification with a passkey" in refused.text
        assert "idp_session" not in browser.cookies


def test_a_passkey_steps_up_a_password_session_in_place(world: World) -> None:
    device = _device(world)
    with world.browser() as browser:
        first = world.request()
        page = browser.get(first.url())
        assert submit_login(browser, page, "alice", PASSWORD).status_code == 303
        cookie = browser.cookies["idp_session"]
        _register(world, world.user_id, device)  # added after this sign-in
        request = world.request(acr_values=MFA)
        asked = browser.get(request.url())
        assert asked.status_code == 200 and "Use a passkey" in asked.text
        done = _use_passkey(browser, asked, device)
        assert done.status_code == 303, done.text
        assert browser.cookies["idp_session"] == cookie  # the same session, raised
        claims = _claims(world, request, done.headers["location"])
        assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == MFA
        assert browser.get(world.request(acr_values=MFA).url()).status_code == 303
