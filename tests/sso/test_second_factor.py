"""The second factor at sign-in over a real server on both stores: TOTP and recovery codes,
their refusals, the throttle, forged or skipped steps, and step-up by client, acr_values and
max_age; amr and acr in the ID token."""

from __future__ import annotations

from dataclasses import replace

import httpx

from idp.config import Settings
from idp.store.base import Store
from tests.support.factors import (
    MFA,
    code_now,
    enrol_totp,
    is_second_factor_page,
    submit_code,
    wrong_code,
)
from tests.support.server import register_client, with_store
from tests.support.sso import (
    PASSWORD,
    WEB_CB,
    AuthorizeParams,
    World,
    hidden_inputs,
    query_of,
    redeem,
    sign_in,
    submit_login,
    verify_jwt,
)

MFA_AMR = ["pwd", "otp", "mfa"]


def _password_step(browser: httpx.Client, request: AuthorizeParams) -> httpx.Response:
    page = browser.get(request.url())
    assert page.status_code == 200 and 'name="password"' in page.text
    asked = submit_login(browser, page, "alice", PASSWORD)
    assert asked.status_code == 200, asked.text
    assert is_second_factor_page(asked)
    return asked


def _id_token_claims(world: World, request: AuthorizeParams, location: str) -> dict[str, object]:
    answer = query_of(location)
    tokens = redeem(world.url, request, answer["code"])
    assert tokens.status_code == 200, tokens.text
    _, claims = verify_jwt(world.url, tokens.json()["id_token"])
    _, access = verify_jwt(world.url, tokens.json()["access_token"])
    assert access["acr"] == claims["acr"]
    return claims


def _audit_actions(world: World) -> list[tuple[str, str, dict[str, object]]]:
    entries = with_store(world.server.settings.database_url, lambda s: s.list_audit())
    return [(e.action, e.outcome, dict(e.detail)) for e in entries if e.action.startswith("mfa.")]


def test_password_alone_gives_pwd_amr_and_discovery_lists_acr_values(world: World) -> None:
    request = world.request()
    with world.browser() as browser:
        answer = sign_in(browser, request)
    tokens = redeem(world.url, request, answer["code"]).json()
    _, claims = verify_jwt(world.url, tokens["id_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:idp:acr:pwd"
    metadata = httpx.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["acr_values_supported"] == ["urn:idp:acr:pwd", MFA]


def test_totp_code_finishes_the_sign_in_once(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    request = world.request()
    with world.browser() as browser:
        asked = _password_step(browser, request)
        assert "idp_session" not in browser.cookies  # no session before the second factor
        wrong = submit_code(browser, asked, wrong_code(secret, world.clock))
        assert wrong.status_code == 200 and "not right" in wrong.text
        done = submit_code(browser, wrong, code_now(secret, world.clock))
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith(WEB_CB + "?")
        assert "idp_session" in browser.cookies
        claims = _id_token_claims(world, request, done.headers["location"])
    assert claims["amr"] == MFA_AMR and claims["acr"] == MFA

    # The same code (the same time step) is refused in another browser.
    again = world.request()
    with world.browser() as other:
        asked = _password_step(other, again)
        replayed = submit_code(other, asked, code_now(secret, world.clock))
        assert replayed.status_code == 200 and "already used" in replayed.text
        world.clock.advance(30)
        done = submit_code(other, replayed, code_now(secret, world.clock))
        assert done.status_code == 303
    outcomes = [(a, o, d.get("reason")) for a, o, d in _audit_actions(world)]
    assert ("mfa.verify", "failure", "wrong_code") in outcomes
    assert [o for a, o, _ in outcomes if a == "mfa.verify"].count("success") == 2


def test_recovery_code_works_once(world: World) -> None:
    world.clock.freeze()
    _, codes = enrol_totp(world.server.settings, world.user_id, world.clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    request = world.request()
    with world.browser() as browser:
        asked = _password_step(browser, request)
        done = submit_code(browser, asked, codes[0].upper())
        assert done.status_code == 303, done.text
        claims = _id_token_claims(world, request, done.headers["location"])
    assert claims["amr"] == MFA_AMR
    with world.browser() as other:
        asked = _password_step(other, world.request())
        used = submit_code(other, asked, codes[0])
        assert used.status_code == 200 and "not right" in used.text
    used_rows = [d for a, _, d in _audit_actions(world) if a == "mfa.recovery_code.use"]
    assert used_rows and used_rows[0]["remaining"] == 9


def test_second_factor_attempts_are_throttled(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    good, wrong = code_now(secret, world.clock), wrong_code(secret, world.clock)
    with world.browser() as browser:
        page = _password_step(browser, world.request())
        for _ in range(world.server.settings.login_max_failures):
            page = submit_code(browser, page, wrong)
            assert page.status_code == 200
        page = submit_code(browser, page, wrong)  # the first over the allowance is checked
        throttled = submit_code(browser, page, good)
        assert throttled.status_code == 429, throttled.text
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Too many" in throttled.text
        world.clock.advance(61)
        done = submit_code(browser, throttled, code_now(secret, world.clock))
        assert done.status_code == 303, done.text
    reasons = [d.get("reason") for a, o, d in _audit_actions(world) if o == "failure"]
    assert "wrong_code" in reasons
    url = world.server.settings.database_url
    throttled = with_store(url, lambda s: s.list_audit(action="signin.throttled"))
    assert [e.detail["step"] for e in throttled] == ["second_factor"]


def test_the_second_step_cannot_be_skipped_or_forged(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        login_page = browser.get(world.request().url())
        login_fields = hidden_inputs(login_page.text)
        # Straight to the code endpoint with the login form's state: not a pending sign-in.
        skipped = browser.post(
            "/login/second-factor",
            data={**login_fields, "code": code_now(secret, world.clock)},
        )
        assert skipped.status_code == 400
        nothing = browser.post("/login/second-factor", data={"code": "123456"})
        assert nothing.status_code == 400
        asked = _password_step(browser, world.request())
        fields = hidden_inputs(asked.text)
        payload, _, mac = fields["request"].partition(".")
        forged = browser.post(
            "/login/second-factor",
            data={"request": f"{payload}x.{mac}", "csrf": fields["csrf"], "code": "1"},
        )
        assert forged.status_code == 400
        no_csrf = browser.post(
            "/login/second-factor", data={"request": fields["request"], "code": "123456"}
        )
        assert no_csrf.status_code == 403
    # Another browser cannot finish this one's pending sign-in, even with the right code.
    with world.browser() as thief:
        stolen = thief.post(
            "/login/second-factor",
            data={**fields, "code": code_now(secret, world.clock)},
        )
        assert stolen.status_code == 403
        assert "idp_session" not in thief.cookies
    # The pending state expires.
    with world.browser() as late:
        asked = _password_step(late, world.request())
        world.clock.advance(301)
        expired = submit_code(late, asked, code_now(secret, world.clock))
        assert expired.status_code == 400


def test_client_requiring_mfa_steps_up_a_password_session(world: World, settings: Settings) -> None:
    world.clock.freeze()
    strict, _ = register_client(
        replace(settings, allow_private_backchannel=True),
        "strict",
        public=True,
        redirect_uris=["http://127.0.0.1:8765/strict/cb"],
        grant_types=["authorization_code"],
        require_mfa=True,
    )
    with world.browser() as browser:
        sign_in(browser, world.request())  # password only: no factor yet
        request = AuthorizeParams(strict, "http://127.0.0.1:8765/strict/cb")
        notice = browser.get(request.url())
        assert notice.status_code == 403 and "/account/totp" in notice.text
        secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
        asked = browser.get(request.url())
        assert asked.status_code == 200 and is_second_factor_page(asked)
        none = browser.get(
            AuthorizeParams(strict, request.redirect_uri, extra={"prompt": "none"}).url()
        )
        assert query_of(none.headers["location"])["error"] == "interaction_required"
        done = submit_code(browser, asked, code_now(secret, world.clock))
        assert done.status_code == 303, done.text
        claims = _id_token_claims(world, request, done.headers["location"])
        assert claims["acr"] == MFA and claims["amr"] == MFA_AMR
        # The session now has its second factor: the next request is answered at once.
        again = browser.get(world.request().url())
        assert again.status_code == 303


def test_required_factor_without_one_issues_no_code(world: World) -> None:
    request = world.request(acr_values=MFA)
    with world.browser() as browser:
        page = browser.get(request.url())
        done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 403
        assert 'href="/account/totp"' in done.text
        assert "location" not in done.headers


def test_acr_values_steps_up_an_existing_session(world: World) -> None:
    world.clock.freeze()
    with world.browser() as browser:
        sign_in(browser, world.request())
        secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
        request = world.request(acr_values=f"{MFA} urn:idp:acr:pwd")
        asked = browser.get(request.url())
        assert asked.status_code == 200 and is_second_factor_page(asked)
        done = submit_code(browser, asked, code_now(secret, world.clock))
        assert done.status_code == 303
        claims = _id_token_claims(world, request, done.headers["location"])
        assert claims["acr"] == MFA


def test_max_age_asks_the_second_factor_again(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        asked = _password_step(browser, world.request())
        first = submit_code(browser, asked, code_now(secret, world.clock))
        assert first.status_code == 303
        world.clock.advance(400)
        request = world.request(max_age="300")
        asked = browser.get(request.url())
        assert asked.status_code == 200 and is_second_factor_page(asked)
        done = submit_code(browser, asked, code_now(secret, world.clock))
        assert done.status_code == 303
        claims = _id_token_claims(world, request, done.headers["location"])
        assert claims["acr"] == MFA
        assert abs(int(claims["auth_time"]) - world.clock()) <= 1  # type: ignore[call-overload]
        # Within max_age now: answered at once.
        assert browser.get(world.request(max_age="300").url()).status_code == 303


def test_user_flag_requires_a_second_factor(world: World) -> None:
    async def require(store: Store) -> None:
        user = await store.get_user(world.user_id)
        assert user is not None
        await store.update_user(replace(user, mfa_required=True))

    with_store(world.server.settings.database_url, require)
    with world.browser() as browser:
        page = browser.get(world.request().url())
        done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 403 and "/account/totp" in done.text
