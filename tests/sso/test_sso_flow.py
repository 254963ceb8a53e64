"""Single sign-on over a real server on both stores: authorize, login, SSO, code, ID token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from idp.config import Settings
from tests.support.server import register_client
from tests.support.sso import (
    PASSWORD,
    TWO_CB,
    WEB_CB,
    AuthorizeParams,
    World,
    hidden_inputs,
    query_of,
    redeem,
    sign_as_provider,
    sign_in,
    submit_login,
    verify_jwt,
)

FORM = "application/x-www-form-urlencoded"


def test_authlib_client_signs_in_and_reads_userinfo(world: World) -> None:
    async def flow() -> None:
        client = AsyncOAuth2Client(
            client_id=world.web,
            redirect_uri=WEB_CB,
            scope="openid profile email",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        )
        verifier = "v" * 20 + "x" * 30
        url, state = client.create_authorization_url(
            f"{world.url}/authorize", code_verifier=verifier, nonce="n-0S6_WzA2Mj"
        )
        with world.browser() as browser:
            page = browser.get(url)
            assert page.status_code == 200
            done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 303
        location = done.headers["location"]
        answer = query_of(location)
        assert answer["state"] == state and answer["iss"] == world.url
        token = await client.fetch_token(
            f"{world.url}/token", authorization_response=location, code_verifier=verifier
        )
        header, claims = verify_jwt(world.url, token["id_token"])
        assert header["alg"] == "RS256"
        assert claims["iss"] == world.url and claims["sub"] == world.user_id
        assert claims["aud"] == world.web and claims["azp"] == world.web
        assert claims["nonce"] == "n-0S6_WzA2Mj"
        assert claims["sid"] and isinstance(claims["auth_time"], int)
        assert claims["exp"] - claims["iat"] == 3600
        assert claims["email"] == "alice@example.org" and claims["name"] == "Alice Liddell"
        digest = hashlib.sha256(token["access_token"].encode()).digest()
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        at_header, at_claims = verify_jwt(world.url, token["access_token"])
        assert at_header["typ"] == "at+jwt" and at_claims["sub"] == world.user_id
        assert token["scope"] == "openid profile email" and token["token_type"] == "Bearer"
        assert "refresh_token" not in token

        info = await client.get(f"{world.url}/userinfo")
        assert info.status_code == 200
        assert info.json() == {
            "sub": world.user_id,
            "name": "Alice Liddell",
            "preferred_username": "alice",
            "email": "alice@example.org",
        }
        posted = httpx.post(
            f"{world.url}/userinfo",
            data={"access_token": token["access_token"]},
            timeout=10,
        )
        assert posted.status_code == 200 and posted.json()["sub"] == world.user_id
        await client.aclose()

    asyncio.run(flow())


def test_second_client_gets_a_code_at_once_in_the_same_session(world: World) -> None:
    with world.browser() as browser:
        first = world.request()
        code = sign_in(browser, first)["code"]
        one = redeem(world.url, first, code).json()
        second = world.request(world.two)
        answer = browser.get(second.url())
        assert answer.status_code == 303
        query = query_of(answer.headers["location"])
        assert answer.headers["location"].startswith(TWO_CB + "?")
        assert query["state"] == second.state and query["iss"] == world.url
        two = redeem(world.url, second, query["code"]).json()
    _, first_claims = verify_jwt(world.url, one["id_token"])
    _, second_claims = verify_jwt(world.url, two["id_token"])
    assert first_claims["sid"] == second_claims["sid"]
    assert first_claims["auth_time"] == second_claims["auth_time"]
    assert second_claims["aud"] == world.two


def test_prompt_none_without_and_with_a_session(world: World) -> None:
    with world.browser() as browser:
        silent = world.request(prompt="none")
        answer = browser.get(silent.url())
        assert answer.status_code == 302
        query = query_of(answer.headers["location"])
        assert query["error"] == "login_required"
        assert query["state"] == silent.state and query["iss"] == world.url
        assert "code" not in query
        sign_in(browser, world.request())
        again = world.request(world.two, prompt="none")
        query = query_of(browser.get(again.url()).headers["location"])
        assert "code" in query and query["state"] == again.state


def test_id_token_hint_is_checked_and_names_the_expected_user(world: World) -> None:
    """OIDC Core 3.1.2.1: a bad hint is invalid_request; another user's session is no match."""
    with world.browser() as browser:
        first = world.request()
        tokens = redeem(world.url, first, sign_in(browser, first)["code"]).json()
        _, claims = verify_jwt(world.url, tokens["id_token"])
        now = int(time.time())
        expired = sign_as_provider(world, {**claims, "iat": now - 7200, "exp": now - 3600})
        for hint in (tokens["id_token"], expired):
            silent = world.request(world.two, prompt="none", id_token_hint=hint)
            query = query_of(browser.get(silent.url()).headers["location"])
            assert "code" in query and query["state"] == silent.state

        stranger = sign_as_provider(world, {**claims, "sub": "someone-else"})
        silent = world.request(prompt="none", id_token_hint=stranger)
        query = query_of(browser.get(silent.url()).headers["location"])
        assert query["error"] == "login_required" and "code" not in query
        asked = browser.get(world.request(id_token_hint=stranger).url())
        assert asked.status_code == 200 and 'name="password"' in asked.text

        logout_claims = {
            **claims,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        bad_hints = {
            "garbage": "not-a-token",
            "access token": tokens["access_token"],
            "logout token": sign_as_provider(world, logout_claims, "logout+jwt"),
            "other issuer": sign_as_provider(world, {**claims, "iss": "https://evil.example"}),
        }
        for name, hint in bad_hints.items():
            request = world.request(id_token_hint=hint)
            answer = browser.get(request.url())
            assert answer.status_code == 302, name
            query = query_of(answer.headers["location"])
            assert query["error"] == "invalid_request", name
            assert query["state"] == request.state and query["iss"] == world.url
            assert "id_token_hint" in query["error_description"]


def test_prompt_login_and_max_age_ask_for_the_password_again(world: World) -> None:
    with world.browser() as browser:
        first = sign_in(browser, world.request())
        assert "code" in first
        forced = browser.get(world.request(prompt="login").url())
        assert forced.status_code == 200 and 'name="password"' in forced.text
        world.clock.advance(120)
        recent_enough = browser.get(world.request(max_age="600").url())
        assert recent_enough.status_code == 303
        too_old = world.request(max_age="60")
        page = browser.get(too_old.url())
        assert page.status_code == 200 and 'name="password"' in page.text
        done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 303
        code = query_of(done.headers["location"])["code"]
        tokens = redeem(world.url, too_old, code).json()
        _, claims = verify_jwt(world.url, tokens["id_token"])
        assert world.clock() - claims["auth_time"] < 30
        silent_old = world.request(prompt="none", max_age="0")
        world.clock.advance(5)
        query = query_of(browser.get(silent_old.url()).headers["location"])
        assert query["error"] == "login_required"


def test_code_is_single_use_and_bound_to_client_redirect_and_verifier(world: World) -> None:
    with world.browser() as browser:
        request = world.request()
        code = sign_in(browser, request)["code"]
        assert redeem(world.url, request, code).status_code == 200
        replay = redeem(world.url, request, code)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

        for overrides in (
            {"code_verifier": "w" * 50},
            {"code_verifier": ""},
            {"redirect_uri": WEB_CB + "/"},
            {"client_id": world.two, "redirect_uri": TWO_CB},
        ):
            fresh = world.request(prompt="none")
            code = query_of(browser.get(fresh.url()).headers["location"])["code"]
            refused = redeem(world.url, fresh, code, **overrides)
            assert refused.status_code == 400, overrides
            assert refused.json()["error"] in ("invalid_grant", "invalid_request"), overrides
            # A refused attempt spends the code.
            assert redeem(world.url, fresh, code).json()["error"] == "invalid_grant"

        late = world.request(prompt="none")
        code = query_of(browser.get(late.url()).headers["location"])["code"]
        world.clock.advance(61)
        expired = redeem(world.url, late, code)
        assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"
        unknown = redeem(world.url, late, "no-such-code")
        assert unknown.json()["error"] == "invalid_grant"


def test_concurrent_redemptions_of_one_code_have_one_winner(world: World) -> None:
    with world.browser() as browser:
        request = world.request()
        code = sign_in(browser, request)["code"]

    async def race() -> list[int]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "client_id": request.client_id,
            "code_verifier": request.verifier,
        }
        async with httpx.AsyncClient(base_url=world.url, timeout=30) as http:
            answers = await asyncio.gather(*(http.post("/token", data=form) for _ in range(8)))
        return [a.status_code for a in answers]

    statuses = asyncio.run(race())
    assert sorted(statuses) == [200] + [400] * 7


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/cb/extra",
        "http://127.0.0.1:8765/c",
        "http://127.0.0.1:8765/cbx",
        "http://127.0.0.1:8766/cb",
        "http://127.0.0.1:8765/cb#frag",
        "http://127.0.0.1:8765/cb?x=1",
        "http://127.0.0.1:8765/CB",
        "https://127.0.0.1:8765/cb",
        "http://127.0.0.1:8765/cb/../cb",
        "http://evil.example/cb",
        "http://127.0.0.1:8765@evil.example/cb",
        "",
    ],
)
def test_redirect_uri_tricks_get_an_error_page_not_a_redirect(
    world: World, redirect_uri: str
) -> None:
    request = world.request()
    request.redirect_uri = redirect_uri
    with world.browser() as browser:
        answer = browser.get(request.url())
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "redirect_uri" in answer.text


def test_unknown_or_missing_client_gets_an_error_page(world: World) -> None:
    with world.browser() as browser:
        for client_id in ("nope", ""):
            request = world.request()
            request.client_id = client_id
            answer = browser.get(request.url())
            assert answer.status_code == 400 and "location" not in answer.headers
        repeated = browser.get(world.request().url() + f"&client_id={world.two}")
        assert repeated.status_code == 400 and "location" not in repeated.headers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
    ],
)
def test_bad_requests_from_a_known_client_are_redirected_with_iss(
    world: World, change: dict[str, str], error: str
) -> None:
    request = world.request(**change)
    with world.browser() as browser:
        answer = browser.get(request.url())
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(WEB_CB + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == request.state and query["iss"] == world.url
    assert "code" not in query


def test_post_authorize_and_login_hint_prefill(world: World) -> None:
    request = world.request(login_hint="alice")
    with world.browser() as browser:
        page = browser.post("/authorize", data=request.params())
        assert page.status_code == 200
        assert 'value="alice"' in page.text
        done = submit_login(browser, page, "alice", PASSWORD)
        assert query_of(done.headers["location"])["state"] == request.state


def test_login_page_headers_and_session_cookie(world: World) -> None:
    with world.browser() as browser:
        page = browser.get(world.request().url())
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        # Only our own script file (the passkey ceremony), and fetches to our own origin.
        assert "script-src 'self'; connect-src 'self';" in csp and "'unsafe-inline'" not in csp
        assert "form-action 'self' http://127.0.0.1:8765" in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<meta name="viewport"' in page.text
        assert re.findall(r"<script[^>]*>", page.text) == [
            '<script src="/assets/webauthn.js" defer>'
        ]
        assert 'name="username"' in page.text and 'name="password"' in page.text
        done = submit_login(browser, page, "alice", PASSWORD)
        cookies = done.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("idp_session="))
        attributes = {a.strip().lower() for a in session.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax", "max-age=604800"} <= attributes
        assert "secure" not in attributes
        value = session.split(";")[0].split("=", 1)[1]
        assert len(value) >= 43
        css = browser.get("/assets/idp.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_every_login_starts_a_new_session(world: World) -> None:
    with world.browser() as browser:
        sign_in(browser, world.request())
        first = browser.cookies["idp_session"]
        forced = world.request(prompt="login")
        sign_in(browser, forced)
        second = browser.cookies["idp_session"]
        assert first != second
    with world.browser() as stale:
        stale.cookies.set("idp_session", first)
        answer = stale.get(world.request(prompt="none").url())
        assert query_of(answer.headers["location"])["error"] == "login_required"


def test_wrong_password_and_unknown_user_get_the_same_answer(world: World) -> None:
    with world.browser() as browser:
        page = browser.get(world.request().url())
        wrong = submit_login(browser, page, "alice", "wrong")
        unknown = submit_login(browser, page, "mallory", "wrong")
        for answer in (wrong, unknown):
            assert answer.status_code == 200
            assert "Incorrect username or password." in answer.text
            assert "idp_session" not in answer.headers.get("set-cookie", "")
        assert wrong.text.replace('value="alice"', "") == unknown.text.replace(
            'value="mallory"', ""
        )
        done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 303


def test_login_form_csrf_is_checked(world: World) -> None:
    with world.browser() as browser:
        page = browser.get(world.request().url())
        fields = hidden_inputs(page.text)
        base = {"request": fields["request"], "username": "alice", "password": PASSWORD}
        for csrf in (None, "", "A" * 43, fields["csrf"][:-2] + "AA"):
            data = dict(base) if csrf is None else {**base, "csrf": csrf}
            answer = browser.post("/login", data=data)
            assert answer.status_code == 403, csrf
            assert "idp_session" not in answer.headers.get("set-cookie", "")
        tampered = browser.post(
            "/login", data={**base, "csrf": fields["csrf"], "request": fields["request"] + "x"}
        )
        assert tampered.status_code == 400
    with world.browser() as other_browser:
        # Another browser (no binding cookie, or its own) cannot replay the form.
        answer = other_browser.post("/login", data={**base, "csrf": fields["csrf"]})
        assert answer.status_code == 403
        other_browser.get(world.request().url())
        answer = other_browser.post("/login", data={**base, "csrf": fields["csrf"]})
        assert answer.status_code == 403


def test_idle_session_times_out(world: World) -> None:
    with world.browser() as browser:
        sign_in(browser, world.request())
        world.clock.advance(7 * 3600)
        kept = browser.get(world.request(prompt="none").url())
        assert "code" in query_of(kept.headers["location"])
        world.clock.advance(7 * 3600)
        still = browser.get(world.request(prompt="none").url())
        assert "code" in query_of(still.headers["location"]), "use restarts the idle timer"
        world.clock.advance(8 * 3600 + 1)
        idle = browser.get(world.request(prompt="none").url())
        assert query_of(idle.headers["location"])["error"] == "login_required"


def test_es256_client_gets_es256_id_tokens(world: World, settings: Settings) -> None:
    client_id, _ = register_client(
        settings,
        "es",
        public=True,
        redirect_uris=[WEB_CB + "/es"],
        grant_types=["authorization_code"],
        id_token_alg="ES256",
        access_token_alg="ES256",
    )
    request = AuthorizeParams(client_id, WEB_CB + "/es")
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    tokens = redeem(world.url, request, code).json()
    header, claims = verify_jwt(world.url, tokens["id_token"])
    assert header["alg"] == "ES256" and claims["aud"] == client_id
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_malformed_browser_input_never_gives_a_server_error(world: World) -> None:
    good = world.request().params()
    with world.browser() as browser:
        page = browser.get(world.request().url())
        fields = hidden_inputs(page.text)
        attempts = [
            browser.get("/authorize?%ff%fe=1"),
            browser.get("/authorize?client_id=" + "x" * 5000),
            browser.get("/authorize", params={**good, "state": "s" * 5000}),
            browser.get("/authorize", params={**good, "max_age": "99999999999999999999"}),
            browser.get("/authorize", params={**good, "scope": "openid \x01"}),
            browser.post("/authorize", content=b"{}", headers={"content-type": "application/json"}),
            browser.post("/login", data={}),
            browser.post("/login", data={"request": "a.b", "csrf": "c"}),
            browser.post("/login", data={**fields, "username": "\x00"}),
            browser.post("/login", data={**fields, "password": "p" * 60000}),
            browser.post("/login", content=b"\xff\xfe", headers={"content-type": FORM}),
            browser.post("/consent", data={"request": fields["request"], "csrf": fields["csrf"]}),
            browser.post("/logout/confirm", data={}),
            browser.get("/logout", params={"id_token_hint": "e30.e30.e30"}),
            browser.get("/logout", params={"id_token_hint": "x" * 9000}),
            browser.get("/userinfo", headers={"Authorization": "Bearer ...."}),
            browser.get("/userinfo", headers={"Authorization": "Bearer e30.e30.e30"}),
            browser.post("/userinfo", content=b"x", headers={"content-type": "text/plain"}),
            browser.post(
                "/token", data={"grant_type": "authorization_code", "client_id": world.web}
            ),
            browser.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "client_id": world.web,
                    "code": "c" * 300,
                },
            ),
        ]
    for answer in attempts:
        where = (answer.request.url, answer.status_code, answer.text)
        if answer.is_redirect:
            assert "error=" in answer.headers["location"], where
        elif answer.status_code == 200:
            assert "Incorrect username or password." in answer.text, where
        else:
            assert 400 <= answer.status_code < 500, where
        assert "Traceback" not in answer.text
