"""Consent, logout, disabled users and userinfo errors over a real server on both stores."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from idp.config import load_settings
from tests.support.processes import child_env, idp_json, run_idp
from tests.support.server import free_port, make_env, register_client, start_server
from tests.support.sso import (
    BYE,
    PASSWORD,
    AuthorizeParams,
    World,
    add_user,
    hidden_inputs,
    query_of,
    redeem,
    sign_as_provider,
    sign_in,
    submit_login,
    verify_jwt,
)


def _redeem_confidential(world: World, request_redirect: str, code: str, verifier: str) -> dict:
    answer = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request_redirect,
            "code_verifier": verifier,
        },
        auth=(world.consenting, world.consenting_secret),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_consent_page_is_shown_once_and_remembered(world: World) -> None:
    with world.browser() as browser:
        request = world.request(world.consenting)
        page = browser.get(request.url())
        consent_page = submit_login(browser, page, "alice", PASSWORD)
        assert consent_page.status_code == 200
        assert 'action="/consent"' in consent_page.text
        for scope in ("openid", "profile", "email"):
            assert scope in consent_page.text
        assert (
            "form-action 'self' http://127.0.0.1:8765"
            in consent_page.headers["content-security-policy"]
        )
        fields = hidden_inputs(consent_page.text)
        forged = browser.post(
            "/consent", data={"request": fields["request"], "csrf": "x", "decision": "allow"}
        )
        assert forged.status_code == 403
        allowed = browser.post("/consent", data={**fields, "decision": "allow"})
        assert allowed.status_code == 303
        query = query_of(allowed.headers["location"])
        assert query["state"] == request.state and query["iss"] == world.url
        tokens = _redeem_confidential(world, request.redirect_uri, query["code"], request.verifier)
        assert verify_jwt(world.url, tokens["id_token"])[1]["aud"] == world.consenting

        again = world.request(world.consenting, prompt="none")
        assert "code" in query_of(browser.get(again.url()).headers["location"])
        wider = world.request(world.consenting, prompt="consent")
        assert 'action="/consent"' in browser.get(wider.url()).text


def test_consent_required_with_prompt_none_and_denial(world: World) -> None:
    with world.browser() as browser:
        sign_in(browser, world.request())
        silent = world.request(world.consenting, prompt="none")
        query = query_of(browser.get(silent.url()).headers["location"])
        assert query["error"] == "consent_required" and query["state"] == silent.state
        request = world.request(world.consenting)
        page = browser.get(request.url())
        fields = hidden_inputs(page.text)
        denied = browser.post("/consent", data={**fields, "decision": "deny"})
        assert denied.status_code == 303
        query = query_of(denied.headers["location"])
        assert query["error"] == "access_denied" and query["iss"] == world.url
        assert query["state"] == request.state


def test_logout_with_hint_ends_the_session_and_redirects(world: World) -> None:
    with world.browser() as browser:
        request = world.request()
        tokens = redeem(world.url, request, sign_in(browser, request)["code"]).json()
        answer = browser.get(
            "/logout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": BYE,
                "state": "bye-state",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{BYE}?state=bye-state"
        assert 'idp_session=""' in answer.headers["set-cookie"]
        silent = world.request(prompt="none")
        assert query_of(browser.get(silent.url()).headers["location"])["error"] == (
            "login_required"
        )
    with world.browser() as replay:
        replay.cookies.set("idp_session", browser.cookies.get("idp_session") or "gone")
        assert "error=login_required" in replay.get(silent.url()).headers["location"]


def test_logout_without_hint_asks_for_confirmation(world: World) -> None:
    with world.browser() as browser:
        sign_in(browser, world.request())
        cookie = browser.cookies["idp_session"]
        page = browser.get(
            "/logout", params={"client_id": world.web, "post_logout_redirect_uri": BYE}
        )
        assert page.status_code == 200 and 'action="/logout/confirm"' in page.text
        assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1
        fields = hidden_inputs(page.text)
        forged = browser.post("/logout/confirm", data={"request": fields["request"]})
        assert forged.status_code == 403
        assert "code" in query_of(
            browser.get(world.request(prompt="none").url()).headers["location"]
        )
        done = browser.post("/logout/confirm", data=fields)
        assert done.status_code == 303 and done.headers["location"] == BYE
    with world.browser() as after:
        after.cookies.set("idp_session", cookie)
        silent = after.get(world.request(prompt="none").url())
        assert query_of(silent.headers["location"])["error"] == "login_required"


def test_logout_hint_must_be_an_id_token_issued_to_a_client(world: World) -> None:
    """Other tokens we sign (access and logout tokens) never sign a user out unasked."""
    with world.browser() as browser:
        request = world.request()
        tokens = redeem(world.url, request, sign_in(browser, request)["code"]).json()
        _, id_claims = verify_jwt(world.url, tokens["id_token"])
        now = int(time.time())
        logout_claims = {
            "iss": world.url,
            "aud": world.web,
            "iat": now,
            "exp": now + 120,
            "jti": "logout-1",
            "sid": id_claims["sid"],
            "sub": world.user_id,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        no_client = {k: v for k, v in id_claims.items() if k not in ("aud", "azp")}
        not_id_tokens = {
            "access token": tokens["access_token"],
            "logout token": sign_as_provider(world, logout_claims, "logout+jwt"),
            "logout claims typed JWT": sign_as_provider(world, logout_claims),
            "typed at+jwt": sign_as_provider(world, id_claims, "at+jwt"),
            "other issuer": sign_as_provider(world, {**id_claims, "iss": "https://evil.example"}),
            "no client": sign_as_provider(world, no_client),
            "unknown client": sign_as_provider(world, {**id_claims, "aud": "x", "azp": "x"}),
        }
        for name, hint in not_id_tokens.items():
            answer = browser.get("/logout", params={"id_token_hint": hint})
            assert answer.status_code == 400 and "location" not in answer.headers, name
        alive = browser.get(world.request(prompt="none").url())
        assert "code" in query_of(alive.headers["location"])

        expired = {**id_claims, "iat": now - 7200, "exp": now - 3600}
        untyped = browser.get(
            "/logout", params={"id_token_hint": sign_as_provider(world, expired, None)}
        )
        assert untyped.status_code == 200 and "signed out" in untyped.text.lower()
        gone = browser.get(world.request(prompt="none").url())
        assert query_of(gone.headers["location"])["error"] == "login_required"


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": BYE},
        {"client_id": "web-unknown", "post_logout_redirect_uri": BYE},
        {"id_token_hint": "not.a.jwt"},
    ],
)
def test_bad_logout_requests_get_an_error_page(world: World, params: dict[str, str]) -> None:
    with world.browser() as browser:
        answer = browser.get("/logout", params=params)
    assert answer.status_code == 400 and "location" not in answer.headers


def test_logout_refuses_unregistered_post_logout_uris(world: World) -> None:
    with world.browser() as browser:
        for uri in (BYE + "/x", BYE + "?a=1", "http://127.0.0.1:8766/bye", BYE.upper()):
            answer = browser.get(
                "/logout", params={"client_id": world.web, "post_logout_redirect_uri": uri}
            )
            assert answer.status_code == 400 and "location" not in answer.headers, uri
        plain = browser.get("/logout")
        assert plain.status_code == 200 and "signed out" in plain.text.lower()


def test_userinfo_errors_follow_rfc_6750(world: World) -> None:
    with world.browser() as browser:
        request = world.request()
        request.scope = "profile"
        tokens = redeem(world.url, request, sign_in(browser, request)["code"]).json()
    assert "id_token" not in tokens
    none = httpx.get(f"{world.url}/userinfo", timeout=10)
    assert none.status_code == 401 and none.headers["www-authenticate"] == 'Bearer realm="idp"'
    bad = httpx.get(
        f"{world.url}/userinfo", headers={"Authorization": "Bearer abc.def.ghi"}, timeout=10
    )
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    scoped = httpx.get(
        f"{world.url}/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert scoped.status_code == 403
    assert 'error="insufficient_scope"' in scoped.headers["www-authenticate"]
    world.clock.advance(601)
    with world.browser() as browser:
        fresh = world.request()
        good = redeem(world.url, fresh, sign_in(browser, fresh)["code"]).json()["access_token"]
    world.clock.advance(600 + 31)  # past exp and the 30 s leeway given to replicas' clocks
    expired = httpx.get(
        f"{world.url}/userinfo", headers={"Authorization": f"Bearer {good}"}, timeout=10
    )
    assert expired.status_code == 401 and "invalid_token" in expired.headers["www-authenticate"]


def test_disabled_user_loses_sessions_codes_and_login(
    world: World, env: dict[str, str], tmp_path: Path
) -> None:
    with world.browser() as browser:
        request = world.request()
        code = sign_in(browser, request)["code"]
        done = idp_json(["users", "disable", "alice"], env, tmp_path)
        assert done["disabled"] is True and done["sessions_ended"] == 1
        refused = redeem(world.url, request, code)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        silent = browser.get(world.request(prompt="none").url())
        assert query_of(silent.headers["location"])["error"] == "login_required"
        page = browser.get(world.request().url())
        again = submit_login(browser, page, "alice", PASSWORD)
        assert again.status_code == 200 and "Incorrect username or password." in again.text
    assert run_idp(["users", "disable", "nobody"], env, tmp_path).returncode == 1


def test_set_password_replaces_the_password(
    world: World, env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "idp", "users", "set-password", "alice", "--password-stdin"],
        input="a new passphrase\n",
        env=child_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with world.browser() as browser:
        page = browser.get(world.request().url())
        assert submit_login(browser, page, "alice", PASSWORD).status_code == 200
        assert submit_login(browser, page, "alice", "a new passphrase").status_code == 303


def test_https_issuer_uses_host_prefixed_secure_cookies(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = make_env(database_url, port)
    env["IDP_ISSUER"] = f"https://localhost:{port}"
    settings = load_settings(env)
    server = start_server(settings, port)
    try:
        add_user(settings)
        client_id, _ = register_client(
            settings,
            "web",
            public=True,
            redirect_uris=["https://app.example/cb"],
            grant_types=["authorization_code"],
        )
        request = AuthorizeParams(client_id, "https://app.example/cb")
        with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as browser:
            page = browser.get(request.url())
            # httpx keeps Secure cookies off plain http, so the binding cookie is sent by hand.
            binding = next(
                c
                for c in page.headers.get_list("set-cookie")
                if c.startswith("__Host-idp_browser=")
            )
            fields = hidden_inputs(page.text)
            value = binding.split(";")[0].split("=", 1)[1]
            done = browser.post(
                "/login",
                data={**fields, "username": "alice", "password": PASSWORD},
                headers={"Cookie": f"__Host-idp_browser={value}"},
            )
        assert done.status_code == 303, done.text
        session = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("__Host-idp_session=")
        )
        attributes = {a.strip().lower() for a in session.split(";")[1:]}
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
    finally:
        server.stop()


def test_pkce_is_optional_for_confidential_clients_only(world: World) -> None:
    with world.browser() as browser:
        public = world.request()
        public.pkce = False
        query = query_of(browser.get(public.url()).headers["location"])
        assert query["error"] == "invalid_request" and "code" not in query
        request = world.request(world.consenting)
        request.pkce = False
        page = browser.get(request.url())
        consent_page = submit_login(browser, page, "alice", PASSWORD)
        allowed = browser.post(
            "/consent", data={**hidden_inputs(consent_page.text), "decision": "allow"}
        )
        code = query_of(allowed.headers["location"])["code"]
        smuggled = httpx.post(
            f"{world.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": request.redirect_uri,
                "code_verifier": request.verifier,
            },
            auth=(world.consenting, world.consenting_secret),
            timeout=30,
        )
        assert smuggled.status_code == 400 and smuggled.json()["error"] == "invalid_grant"
        again = world.request(world.consenting, prompt="none")
        again.pkce = False
        code = query_of(browser.get(again.url()).headers["location"])["code"]
        answer = httpx.post(
            f"{world.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": again.redirect_uri,
            },
            auth=(world.consenting, world.consenting_secret),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        wrong_secret = httpx.post(
            f"{world.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": "x",
                "redirect_uri": again.redirect_uri,
            },
            auth=(world.consenting, "not-the-secret"),
            timeout=30,
        )
        assert wrong_secret.status_code == 401
